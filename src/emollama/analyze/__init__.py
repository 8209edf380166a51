"""`emollama analyze`: input discovery, robust media loading, resumable result store and the batch runner."""

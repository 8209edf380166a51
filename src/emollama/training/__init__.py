"""Training: stages as data, LoRA, instruction data, and one HF-Trainer-based loop (`run_training`).

Nothing is imported at package import time; use the submodules.
"""

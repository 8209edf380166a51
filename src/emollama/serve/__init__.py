"""HTTP serving (extra `serve`): `emollama.serve.app.create_app` over `emollama.api`, plus the static web demo."""

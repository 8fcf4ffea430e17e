"""The console and HTTP API (`bindery web`): thin FastAPI routes over the same rules as the CLI."""

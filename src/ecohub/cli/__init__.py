"""The `ecohub` command line (Typer)."""

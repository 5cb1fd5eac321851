"""`python -m ecohub.cli` runs the CLI (tests use it to run the CLI of this interpreter)."""

from ecohub.cli.app import main

main()

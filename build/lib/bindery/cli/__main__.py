"""`python -m bindery.cli` runs the `bindery` command."""

from bindery.cli import main

main()

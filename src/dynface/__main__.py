"""`python -m dynface` runs the command-line interface."""

from dynface.cli import main

main()

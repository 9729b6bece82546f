"""`python -m exportcheck` runs the command-line tool."""

from exportcheck.cli.main import main

main()

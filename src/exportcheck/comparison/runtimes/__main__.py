"""`python -m exportcheck.comparison.runtimes`: a host process of an isolated runtime."""

from exportcheck.comparison.runtimes.host import main

main()

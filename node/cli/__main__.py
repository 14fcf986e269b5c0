"""`python -m node.cli`: the branchnet command line."""

from . import main

main()

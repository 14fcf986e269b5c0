"""``python -m node``: the branchnet CLI (same as the ``branchnet`` console script)."""

from .cli import main

main()

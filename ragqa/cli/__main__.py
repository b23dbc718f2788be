"""`python -m ragqa.cli`: the same as the `ragqa` command."""

from .app import main

main()

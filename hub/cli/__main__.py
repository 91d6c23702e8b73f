"""`python -m hub.cli`: the same as `pingan-hub`."""

from hub.cli.main import main

main()

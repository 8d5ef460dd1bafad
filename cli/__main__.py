"""`python -m cli ...` runs the same command line as `answerdesk ...`."""

from cli.main import main

main()

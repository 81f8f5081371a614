"""``python -m sbkube`` runs the command line."""

from sbkube.cli import main

main()

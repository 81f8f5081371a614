"""``python -m sbkube`` runs the command line."""

from sbkube.cli import main

# main() returns the exit code of a command that ends with ctx.exit(code) (click's
# standalone_mode=False); the console script passes it to sys.exit, and so must this.
raise SystemExit(main())

"""Entry point of `launcher` and `python -m launcher`; the routing is launcher.cli.main's."""

import sys

from launcher.cli.main import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())

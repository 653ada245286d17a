"""``python -m sklearn_modgap``: the ``modgap`` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m switchyard_ship``: the same as the ``switchyard-ship`` console script."""

from .cli import main

raise SystemExit(main())

"""``python -m cjlib.report`` is the ``cj`` command."""

from cjlib.report.cli import main

raise SystemExit(main())

"""Progress bars for long cjlib loops that read well everywhere.

Interactive (JupyterLab): a widget bar. Batch (the runner sets ``CJLIB_BATCH=1``) or a terminal:
a plain-text bar on stderr that redraws rarely, so an exported report shows the finished line,
never a frozen "0 %".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["track"]


def track(
    iterable: Iterable, *, total: int | None = None, desc: str | None = None, disable: bool = False
) -> Any:
    """Wrap ``iterable`` in the right progress bar for where the code runs."""
    if os.environ.get("CJLIB_BATCH") or "ipykernel" not in sys.modules:
        from tqdm.std import tqdm

        return tqdm(
            iterable,
            total=total,
            desc=desc,
            disable=disable,
            file=sys.stderr,
            mininterval=30,
            ascii=True,
        )
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=disable)

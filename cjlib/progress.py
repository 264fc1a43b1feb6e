"""Progress for long cjlib loops that reads well everywhere.

- JupyterLab (interactive kernel): a widget bar.
- A batch report (the runner sets ``CJLIB_BATCH=1``): one finished line on stdout at the end
  (``bootstrap: 100% 400/400 in 3.1 s``); an exported report never shows a frozen "0 %".
- A terminal script: a plain-text bar on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["track"]


def _finished_line(iterable: Iterable, total: int | None, desc: str | None) -> Iterator:
    start = time.perf_counter()
    n = 0
    for item in iterable:
        n += 1
        yield item
    print(
        f"{desc or 'progress'}: 100% {n}/{total or n} in {time.perf_counter() - start:.1f} s",
        file=sys.stdout,  # stderr is drawn like an error in exported HTML
    )


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget bar can be drawn)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def track(
    iterable: Iterable, *, total: int | None = None, desc: str | None = None, disable: bool = False
) -> Any:
    """Wrap ``iterable`` in the right kind of progress for where the code runs."""
    if disable:
        return iterable
    if os.environ.get("CJLIB_BATCH"):
        return _finished_line(iterable, total, desc)
    if _in_kernel():
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, total=total, desc=desc)

"""What a report shows: formatted tables, Markdown, offline plotly, and privacy by default.

Reports leave the analytics team, so by default they hold aggregates only: :func:`table` refuses
columns that identify customers, and blanks every row that describes fewer than ``min_cell_size``
customers (default 10), marking it as suppressed. :func:`set_privacy` (called from a notebook's
parameters) lowers the threshold or allows row-level output; :func:`privacy_note` says so in the
appendix.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from cjlib.units import duration_text

__all__ = [
    "setup",
    "set_privacy",
    "privacy",
    "privacy_note",
    "suppress",
    "table",
    "show_markdown",
    "show_plotly",
    "IDENTIFIER_COLUMNS",
    "COUNT_COLUMNS",
]

IDENTIFIER_COLUMNS = (
    "customer_id",
    "user_id",
    "user_pseudo_id",
    "email_address",
    "session_id",
)
COUNT_COLUMNS = ("customers", "users", "n", "count", "size", "respondents", "journeys")
_PRIVACY: dict[str, Any] = {"min_cell_size": 10, "allow_row_level": False}


def setup(*, min_cell_size: int = 10, allow_row_level: bool = False) -> None:
    """Notebook set-up: privacy settings, data-quality warnings as notes, sharp inline charts,
    offline plotly."""
    set_privacy(min_cell_size=min_cell_size, allow_row_level=allow_row_level)
    warnings.showwarning = _show_warning
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.run_line_magic("config", "InlineBackend.figure_formats = ['retina']")
    except Exception:  # pragma: no cover - outside IPython nothing to configure
        pass
    import plotly.io as pio

    pio.renderers.default = "plotly_mimetype+notebook"


_SHOW_WARNING = warnings.showwarning  # the default, for every other warning


def _show_warning(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
    """Data-quality warnings (duplicates kept, rows dropped) as a note in the report, not as a
    stderr block. Their first line is the finding; the lines after it are example rows, which
    identify customers and are shown only when row-level output is allowed."""
    from cjlib.schema import DataQualityWarning

    if not issubclass(category, DataQualityWarning):
        _SHOW_WARNING(message, category, *args, **kwargs)
        return
    from html import escape

    from IPython.display import HTML, display

    head, _, rows = str(message).partition("\n")
    body = f"<b>Data quality:</b> {escape(head)}"
    if rows and _PRIVACY["allow_row_level"]:
        body += f"<pre style='margin:0.4em 0 0'>{escape(rows)}</pre>"
    elif rows:
        body += " (example rows are not shown: the report holds aggregates only)"
    display(HTML(f"<div style='border-left:4px solid #b07d00;padding:0.4em 0.8em;"
                 f"background:#fff8e1'>{body}</div>"))  # fmt: skip


def set_privacy(*, min_cell_size: int = 10, allow_row_level: bool = False) -> None:
    """Set the suppression threshold and whether row-level (per-customer) output is allowed."""
    if not isinstance(min_cell_size, int) or isinstance(min_cell_size, bool) or min_cell_size < 1:
        raise ValueError(f"min_cell_size must be an int >= 1, got {min_cell_size!r}")
    if not isinstance(allow_row_level, bool):
        raise ValueError(f"allow_row_level must be True or False, got {allow_row_level!r}")
    _PRIVACY.update(min_cell_size=min_cell_size, allow_row_level=allow_row_level)


def privacy() -> dict[str, Any]:
    """The current privacy settings."""
    return dict(_PRIVACY)


def privacy_note() -> str:
    """One paragraph for the appendix stating the privacy settings of this report."""
    k = _PRIVACY["min_cell_size"]
    text = (
        f"Privacy: this report shows aggregates only; any table row describing fewer than {k} "
        "customers is suppressed and marked as such."
    )
    if k < 10:
        text += f" The analyst lowered the threshold from the default 10 to {k}."
    if _PRIVACY["allow_row_level"]:
        text += " The analyst allowed row-level output: this report may identify customers."
    return text


def _count_columns(df: Any, counts: Sequence[str] | None) -> list[str]:
    if counts is not None:
        missing = [c for c in counts if c not in df.columns]
        if missing:
            raise ValueError(f"counts names columns the table lacks: {missing}")
        return list(counts)
    return [c for c in df.columns if str(c).lower() in COUNT_COLUMNS]


def suppress(
    df: Any, *, counts: Sequence[str] | None = None, min_cell_size: int | None = None
) -> Any:
    """A copy of ``df`` where rows describing 1 to ``min_cell_size - 1`` customers are blanked.

    ``counts`` are the columns that count customers (default: columns named like ``customers``,
    ``n``, ``count``...). Numeric cells of a suppressed row become NaN; a ``suppressed`` column
    says which rows were blanked. Rows with zero customers describe nobody and are kept.
    """
    k = _PRIVACY["min_cell_size"] if min_cell_size is None else min_cell_size
    cols = _count_columns(df, counts)
    out = df.copy()
    if not cols:
        return out
    small = (out[cols].gt(0) & out[cols].lt(k)).any(axis=1)
    if small.any():
        numeric = [c for c in out.columns if out[c].dtype.kind in "iufb"]
        out[numeric] = out[numeric].astype("float64")
        out.loc[small, numeric] = float("nan")
    out["suppressed"] = small
    return out


def table(
    df: Any,
    *,
    percent: Sequence[str] = (),
    decimals: Mapping[str, int] | None = None,
    caption: str | None = None,
    counts: Sequence[str] | None = None,
    intervals: bool = True,
    hours: Sequence[str] = (),
    points: Sequence[str] = (),
) -> Any:
    """A report-ready view of a result table: privacy applied, separators, percentages.

    ``percent`` columns hold shares (0-1) shown as ``12.3 %``; ``points`` columns hold differences
    of two shares, shown in percentage points (``-4.6 pts``, so that an absolute gap is not read
    as a relative change); integers get thousands separators;
    floats ``decimals[column]`` places (default 2). With ``intervals`` (default), a column ``x``
    with ``x_low`` and ``x_high`` beside it is shown as one column ``x (low–high)``, so tables
    with intervals fit the page. Rows describing fewer than ``min_cell_size`` customers (per the
    ``counts`` columns) are blanked and marked "suppressed". Columns that identify customers are
    refused unless row-level output was allowed. ``hours`` columns hold durations in hours,
    shown in the unit that suits each value (``45 s``, ``3.2 min``, ``5.1 h``, ``2.3 days``).
    Returns a ``Styler``.
    """
    import pandas as pd

    ids = [c for c in df.columns if str(c).lower() in IDENTIFIER_COLUMNS]
    if ids and not _PRIVACY["allow_row_level"]:
        raise ValueError(
            f"table: column {ids[0]!r} identifies customers and reports hold "
            "aggregates only; aggregate first, or set allow_row_level=True "
            "(the appendix will say so)"
        )
    shown = suppress(df, counts=counts)
    marked = shown.pop("suppressed") if "suppressed" in shown else pd.Series(False, shown.index)
    # durations carry their own unit, so "median_hours" is headed "median"
    plain = {c: c.removesuffix("_hours") for c in hours if c.endswith("_hours") and c in shown}
    shown = shown.rename(columns=plain)
    hours = [plain.get(c, c) for c in hours]
    decimals = dict(decimals or {})
    merged: list[str] = []
    if intervals:
        shown, merged = _merge_intervals(shown, percent, decimals, points)
    formats: dict[str, Any] = {}
    for col in shown.columns:
        if col in merged:
            continue  # already text
        if col in points:
            formats[col] = _points
        elif col in percent:
            formats[col] = _signed_zero_free("{:.1%}")
        elif col in hours:
            formats[col] = duration_text
        elif pd.api.types.is_integer_dtype(shown[col]) or (
            col in df.columns and pd.api.types.is_integer_dtype(df[col])
        ):
            formats[col] = "{:,.0f}"
        elif pd.api.types.is_float_dtype(shown[col]):
            formats[col] = _signed_zero_free("{:,.%sf}" % decimals.get(col, 2))  # noqa: UP031
    text = [c for c in shown.columns if not pd.api.types.is_numeric_dtype(df.get(c, shown[c]))]
    na = "—"
    styler = shown.style.format(formats, na_rep=na).hide(axis="index")
    if marked.any():
        k = _PRIVACY["min_cell_size"]
        cols = _count_columns(df, counts)
        styler = styler.format(lambda v: f"< {k}", subset=(marked[marked].index, cols))
        caption = (
            caption + " " if caption else ""
        ) + f"(rows with fewer than {k} customers are suppressed)"
    styler = styler.set_properties(subset=text, **{"text-align": "left"})
    if merged:  # an estimate and its interval stay on one line
        styler = styler.set_properties(subset=merged, **{"white-space": "nowrap"})
    styler = styler.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    return styler.set_caption(caption) if caption else styler


def _signed_zero_free(pattern: str) -> Any:
    """``pattern.format``, except that a value that rounds to zero loses its minus sign
    ("-0.0 %" from -0.0003 read as a loss)."""

    def fmt(v: Any) -> str:
        text = pattern.format(v)
        return (
            text[1:] if text.startswith("-") and not any(c in "123456789" for c in text) else text
        )

    return fmt


_TENTHS = _signed_zero_free("{:.1f}")


def _points(v: Any) -> str:
    """A difference of two shares in percentage points: ``-4.6 pts`` (no sign on zero)."""
    return f"{_TENTHS(v * 100)} pts"


def _merge_intervals(
    df: Any, percent: Sequence[str], decimals: Mapping[str, int], points: Sequence[str] = ()
) -> tuple[Any, list[str]]:
    """``x``, ``x_low``, ``x_high`` -> one text column ``x``: ``12.3% (10.1%–14.6%)``, or for
    points ``-4.6 pts (-4.7 to -4.5)``; returns the table and the merged columns."""
    import pandas as pd

    out, merged = df.copy(), []
    for col in list(df.columns):
        lo, hi = f"{col}_low", f"{col}_high"
        if lo not in df.columns or hi not in df.columns:
            continue
        if not all(pd.api.types.is_numeric_dtype(df[c]) for c in (col, lo, hi)):
            continue
        pattern = "{:.1%}" if col in percent else "{:,.%sf}" % decimals.get(col, 2)  # noqa: UP031
        one = _signed_zero_free(pattern)

        def cell(v: float, a: float, b: float, one: Any = one, pts: bool = col in points) -> Any:
            if pd.isna(v):
                return None
            if pts:  # -4.6 pts (-4.7 to -4.5)
                low, high = _TENTHS(a * 100), _TENTHS(b * 100)
                return _points(v) if pd.isna(a) or pd.isna(b) else f"{_points(v)} ({low} to {high})"
            return one(v) if pd.isna(a) or pd.isna(b) else f"{one(v)} ({one(a)}–{one(b)})"

        out[col] = [cell(v, a, b) for v, a, b in zip(df[col], df[lo], df[hi], strict=True)]
        out = out.drop(columns=[lo, hi])
        merged.append(col)
    return out, merged


def show_markdown(text: str) -> None:
    """Display generated Markdown (findings, appendix) as rendered text in the report."""
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_plotly(fig: Any) -> None:
    """Display a plotly figure so it renders in JupyterLab and, offline, in the exported HTML.

    The ``notebook`` renderer inlines plotly.js into the notebook once (about 5 MB), so the HTML
    report needs no network; ``plotly_mimetype`` keeps it interactive in JupyterLab.
    """
    fig.show(renderer="plotly_mimetype+notebook")

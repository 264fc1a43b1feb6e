"""Top channel paths with rates and Wilson intervals, and path flows for a Sankey chart.

Privacy: paths (and flows) taken by fewer than ``min_journeys`` journeys are not shown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cjlib.attribution.journeys import Journeys
from cjlib.stats import wilson_interval

__all__ = ["top_paths", "path_flows", "CONVERTED", "NOT_CONVERTED", "MORE"]

CONVERTED, NOT_CONVERTED, MORE = "conversion", "no conversion", "more touches"


def _check(top: int | None, min_journeys: int) -> None:
    if top is not None and (not isinstance(top, int) or top < 1):
        raise ValueError(f"top must be a positive int or None, got {top!r}")
    if not isinstance(min_journeys, int) or min_journeys < 1:
        raise ValueError(f"min_journeys must be an int >= 1, got {min_journeys!r}")


def top_paths(
    j: Journeys,
    *,
    kind: str = "converting",
    top: int | None = 10,
    min_journeys: int = 10,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The most frequent converting (or non-converting) channel paths.

    Columns: ``path, length, journeys, conversions, conversion_rate`` (= conversions / journeys
    on exactly this path, Wilson interval), ``share`` (= this path's conversions / all
    conversions, or for ``kind="non_converting"`` its non-converting journeys / all
    non-converting journeys, Wilson interval) and ``value``.
    """
    _check(top, min_journeys)
    if kind not in ("converting", "non_converting"):
        raise ValueError(f"kind must be 'converting' or 'non_converting', got {kind!r}")
    df = j.to_frame()
    count = "conversions" if kind == "converting" else "nulls"
    total = float(df[count].sum())
    df = df[(df["journeys"] >= min_journeys) & (df[count] > 0)]
    df = df.sort_values([count, "path"], ascending=[False, True])
    df = df.head(top) if top else df
    n, k = df["journeys"].round().astype("int64"), df["conversions"].round().astype("int64")
    out = pd.DataFrame(
        {
            "path": df["path"],
            "length": df["length"],
            "journeys": n,
            "conversions": k,
            "conversion_rate": k / n,
        }
    )
    out["conversion_rate_low"], out["conversion_rate_high"] = wilson_interval(
        k, n, confidence=confidence
    )
    c = df[count].round().astype("int64")
    out["share"] = c / total if total else np.nan
    out["share_low"], out["share_high"] = wilson_interval(c, round(total), confidence=confidence)
    out["value"] = df["value"]
    return out.reset_index(drop=True)


def path_flows(j: Journeys, *, max_steps: int = 4, min_journeys: int = 10) -> pd.DataFrame:
    """Flows between consecutive steps of the channel paths, for a Sankey chart.

    Columns ``step, source, target, journeys, conversions``: ``source`` is ``"<step>. <channel>"``
    and ``target`` the next step's channel, or the outcome (``conversion`` / ``no conversion``)
    after a journey's last touch, or ``more touches`` after step ``max_steps``. Flows below
    ``min_journeys`` are dropped (so a node's in- and outflow may then differ slightly).
    """
    _check(None, min_journeys)
    if not isinstance(max_steps, int) or max_steps < 1:
        raise ValueError(f"max_steps must be an int >= 1, got {max_steps!r}")
    names = np.asarray(j.channels, dtype=object)
    pos, pid, lengths = j.positions, j.path_ids, j.lengths
    journeys, conversions = j.journeys[pid], j.conversions[pid]
    keep = pos < max_steps
    src = np.char.add(np.char.add((pos + 1).astype(str), ". "), names[j.codes].astype(str))
    last = pos == lengths[pid] - 1
    nxt_code = np.concatenate([j.codes[1:], [0]])
    nxt = np.char.add(np.char.add((pos + 2).astype(str), ". "), names[nxt_code].astype(str))
    inner = keep & ~last & (pos < max_steps - 1)
    cut = keep & ~last & (pos == max_steps - 1)
    end = keep & last
    ep = pid[end]

    def flows(sel: np.ndarray, target, amount, conv) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "step": pos[sel] + 1,
                "source": src[sel],
                "target": target,
                "journeys": amount,
                "conversions": conv,
            }
        )

    frames = [
        flows(inner, nxt[inner], journeys[inner], conversions[inner]),
        flows(cut, MORE, journeys[cut], conversions[cut]),
        flows(end, CONVERTED, j.conversions[ep], j.conversions[ep]),
        flows(end, NOT_CONVERTED, j.nulls[ep], 0.0),
    ]
    df = pd.concat(frames, ignore_index=True)
    df = df.groupby(["step", "source", "target"], as_index=False)[["journeys", "conversions"]].sum()
    df = df[df["journeys"] >= min_journeys]
    return df.sort_values(["step", "journeys"], ascending=[True, False]).reset_index(drop=True)

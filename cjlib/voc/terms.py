"""Which words set detractors' comments apart from promoters', per stage (transparent method).

The weighted log-odds ratio with an informative Dirichlet prior of Monroe, Colaresi & Quinn
(2008), "Fightin' Words", Political Analysis 16:372, section 3.5: with term counts ``y_w^D`` and
``y_w^P`` in the detractors' and promoters' comments (``n^D``, ``n^P`` terms in all), and a prior
``a_w = a0 * (count of w in all comments of the group) / (all terms of the group)``,

    delta_w = log((y_w^D + a_w) / (n^D + a0 - y_w^D - a_w))
            - log((y_w^P + a_w) / (n^P + a0 - y_w^P - a_w)),
    var(delta_w) ~= 1 / (y_w^D + a_w) + 1 / (y_w^P + a_w),    z_w = delta_w / sqrt(var).

Positive ``z`` marks detractor words, negative promoter words. Only counting: no model, nothing
downloaded. Comments are tokenised into lower-case words (stop words dropped) and, when asked,
word pairs. Example comments are shown with identifiers removed (:func:`redact`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cjlib.engine import Engine
from cjlib.voc import scores

__all__ = ["TermsResult", "distinguishing_terms", "log_odds_terms", "tokenize", "redact"]

_STOP = """a an and are as at be been but by did do does for from had has have i i'm in is it it's
    its me my of on or our so than that the their them then there they this to too us was we
    were what when which who will with would you your very just all any can could get got"""
STOP_WORDS = frozenset(_STOP.split())
_REDACTIONS = (
    (re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b"), "[email]"),
    (re.compile(r"\bhttps?://\S+|\bwww\.\S+", re.I), "[link]"),
    (re.compile(r"@\w+"), "[handle]"),
    (re.compile(r"\+?\d[\d ()./-]{6,}\d"), "[number]"),
    (re.compile(r"\b(?=[A-Za-z-]*\d)(?=\d*[A-Za-z])[A-Za-z0-9-]{4,}\b"), "[id]"),
    (re.compile(r"\b\d{4,}\b"), "[number]"),
)


def redact(text: str) -> str:
    """``text`` with e-mail addresses, links, @handles, phone-like numbers and identifier-like
    tokens (letters mixed with digits: ``C0042``, ``AB-1234``) replaced by placeholders."""
    out = str(text)
    for pattern, placeholder in _REDACTIONS:
        out = pattern.sub(placeholder, out)
    return out


_PLACEHOLDER = re.compile(r"\[(?:email|link|handle|number|id)\]")


def tokenize(text: str, *, ngrams: Sequence[int] = (1,)) -> list[str]:
    """Lower-case words of ``text`` (letters and apostrophes), stop words and one-letter words
    dropped; with ``ngrams=(1, 2)`` also consecutive pairs of the kept words. Redacted items
    (:func:`redact`) are not terms, and no pair spans one ("mail me x@y.com" gives "mail")."""
    out: list[str] = []
    for part in _PLACEHOLDER.split(redact(text)):
        words = re.findall(r"[a-z]+(?:'[a-z]+)?", part.lower())
        words = [w for w in words if w not in STOP_WORDS and len(w) > 1]
        for n in ngrams:
            out += [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    return out


def log_odds_terms(
    counts_a: Counter | dict,
    counts_b: Counter | dict,
    prior: Counter | dict,
    *,
    prior_size: float = 100.0,
) -> pd.DataFrame:
    """Monroe et al. (2008) weighted log-odds of each term, group ``a`` against group ``b``.

    ``prior`` are background counts (e.g. all comments), scaled so its pseudo-counts sum to
    ``prior_size`` (``a0``). Returns ``term, count_a, count_b, delta, se, z`` sorted by ``z``.
    """
    if prior_size <= 0:
        raise ValueError(f"prior_size must be > 0, got {prior_size!r}")
    vocab = sorted(set(counts_a) | set(counts_b))
    total_prior = float(sum(prior.values()))
    if not vocab or total_prior <= 0:
        return pd.DataFrame(columns=["term", "count_a", "count_b", "delta", "se", "z"])
    ya = np.array([counts_a.get(w, 0) for w in vocab], dtype=float)
    yb = np.array([counts_b.get(w, 0) for w in vocab], dtype=float)
    alpha = prior_size * np.array([prior.get(w, 0) for w in vocab], dtype=float) / total_prior
    alpha = np.where(alpha > 0, alpha, prior_size / total_prior)  # unseen in prior: one count
    na, nb = ya.sum(), yb.sum()
    delta = np.log((ya + alpha) / (na + prior_size - ya - alpha)) - np.log(
        (yb + alpha) / (nb + prior_size - yb - alpha)
    )
    se = np.sqrt(1 / (ya + alpha) + 1 / (yb + alpha))
    out = pd.DataFrame(
        {"term": vocab, "count_a": ya.astype(int), "count_b": yb.astype(int), "delta": delta}
    )
    out["se"], out["z"] = se, delta / se
    return out.sort_values(["z", "term"], ascending=[False, True], ignore_index=True)


@dataclass(frozen=True)
class TermsResult:
    """``terms``: per group (stage), the ``top`` detractor and promoter terms with counts,
    ``delta``, ``z`` and an example comment (identifiers removed); ``comments``: comment counts
    per group and sentiment; ``parameters``."""

    terms: pd.DataFrame
    comments: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.terms.copy()

    def to_dict(self) -> dict:
        from cjlib.report.glue import jsonable

        return jsonable(
            {"terms": self.terms, "comments": self.comments, "parameters": self.parameters}
        )

    def _repr_html_(self) -> str:
        return self.terms.to_html(index=False, float_format=lambda x: f"{x:.2f}")


def _distinct(lo: pd.DataFrame) -> pd.DataFrame:
    """Drop a term that only repeats a longer term with the same counts ('failed' when 'failed
    twice' occurs exactly as often in both groups), so the top list names different things."""
    if lo.empty:  # lo[[]] would select no columns, not no rows
        return lo.reset_index(drop=True)
    lo = lo.assign(_words=lo["term"].str.count(" ") + 1)
    lo = lo.sort_values(["z", "_words", "term"], ascending=[False, False, True])
    kept: list[tuple[set, int, int]] = []
    keep = []
    for term, a, b in zip(lo["term"], lo["count_a"], lo["count_b"], strict=True):
        words = set(term.split())
        dup = any(words <= w and (a, b) == (ka, kb) for w, ka, kb in kept)
        keep.append(not dup)
        if not dup:
            kept.append((words, a, b))
    return lo[keep].drop(columns=["_words"]).reset_index(drop=True)


def _example(term: str, texts: Iterable[tuple[str, int]], *, width: int = 90) -> str:
    pattern = re.compile(r"\b" + r"\b.*?\b".join(map(re.escape, term.split())) + r"\b", re.I)
    for text, _ in texts:
        clean = redact(text)
        if pattern.search(clean):
            return clean if len(clean) <= width else clean[: width - 1] + "…"
    return ""


def distinguishing_terms(
    surveys: Any,
    *,
    by: str | None = "stage",
    top: int = 5,
    ngrams: Sequence[int] = (1,),
    prior_size: float = 100.0,
    min_count: int = 3,
    min_z: float = 1.96,
    min_size: int = 10,
    stages: Any = None,
    engine: Engine | None = None,
) -> TermsResult:
    """The terms that most distinguish detractors' (NPS 0-6) from promoters' (9-10) comments,
    within each ``by`` group (default stage; ``None`` for all comments together).

    The comment counts come back from the engine grouped by text, so the same comment written
    by many customers is one row. ``min_count``: a term must occur this often (detractors and
    promoters together) and have ``|z| >= min_z``; ``min_size``: groups with fewer detractor or
    promoter comments are skipped (too few to say anything, and privacy). The prior is the
    group's own comments (passives included), scaled to ``prior_size`` pseudo-counts.
    """
    import ibis

    from cjlib.voc.breakdown import prepare_surveys

    if not isinstance(top, int) or top < 1:
        raise ValueError(f"top must be an int >= 1, got {top!r}")
    t, engine, missing = prepare_surveys(surveys, stages=stages, engine=engine)
    if "comment" not in t.columns or "nps" in missing:
        raise ValueError("distinguishing_terms needs survey columns comment and nps")
    if by is not None and by not in t.columns:
        raise ValueError(f"by must be a survey column or None, got {by!r}")
    t = t.filter(t.comment.notnull() & (t.comment.strip() != "") & t.nps.notnull())
    group = t[by].cast("string") if by else ibis.literal("all")
    sentiment = (t.nps >= scores.PROMOTER_MIN).cast("int64") - (t.nps <= scores.DETRACTOR_MAX).cast(
        "int64"
    )
    t = t.mutate(group=group, sentiment=sentiment)
    agg = t.group_by(["group", "sentiment", "comment"]).aggregate(n=t.count())
    counts = engine.to_pandas(agg)
    counts["n"] = counts["n"].astype(int)
    rows, sizes = [], []
    order = list(getattr(stages, "stages", ())) if by == "stage" and stages else []
    groups = sorted(
        counts["group"].dropna().unique(),
        key=lambda g: (g not in order, order.index(g) if g in order else 0, g),
    )
    for g in groups:
        c = counts[counts["group"] == g].sort_values(["n", "comment"], ascending=[False, True])
        bags = {}
        for s in (-1, 0, 1):
            bag: Counter = Counter()
            for text, n in zip(
                c.loc[c.sentiment == s, "comment"], c.loc[c.sentiment == s, "n"], strict=True
            ):
                for w in tokenize(text, ngrams=ngrams):
                    bag[w] += int(n)
            bags[s] = bag
        n_det, n_pro = (
            int(c.loc[c.sentiment == -1, "n"].sum()),
            int(c.loc[c.sentiment == 1, "n"].sum()),
        )
        sizes.append(
            {
                "group": g,
                "detractor_comments": n_det,
                "promoter_comments": n_pro,
                "passive_comments": int(c.loc[c.sentiment == 0, "n"].sum()),
                "analysed": n_det >= min_size and n_pro >= min_size,
            }
        )
        if n_det < min_size or n_pro < min_size:
            continue
        prior = bags[-1] + bags[0] + bags[1]
        lo = log_odds_terms(bags[-1], bags[1], prior, prior_size=prior_size)
        lo = lo[(lo["count_a"] + lo["count_b"] >= min_count) & (lo["z"].abs() >= min_z)]
        lo = _distinct(lo)
        for side, part in (
            ("detractor", lo[lo.z > 0].head(top)),
            ("promoter", lo[lo.z < 0].iloc[::-1].head(top)),
        ):
            s = -1 if side == "detractor" else 1
            texts = list(
                zip(c.loc[c.sentiment == s, "comment"], c.loc[c.sentiment == s, "n"], strict=True)
            )
            for _, r in part.iterrows():
                rows.append(
                    {
                        "group": g,
                        "side": side,
                        "term": r.term,
                        "detractor_count": int(r.count_a),
                        "promoter_count": int(r.count_b),
                        "log_odds": float(r.delta),
                        "z": float(r.z),
                        "example": _example(r.term, texts),
                    }
                )
    terms = pd.DataFrame(
        rows,
        columns=[
            "group",
            "side",
            "term",
            "detractor_count",
            "promoter_count",
            "log_odds",
            "z",
            "example",
        ],
    )
    params = {
        "by": by,
        "top": top,
        "ngrams": list(ngrams),
        "prior_size": prior_size,
        "min_count": min_count,
        "min_z": min_z,
        "min_size": min_size,
    }
    return TermsResult(terms, pd.DataFrame(sizes), params)

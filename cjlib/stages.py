"""The stage model: ordered journey stages and the mapping from events to stages.

A :class:`StageModel` is an ordered tuple of stages plus three ways to say which stage an event
belongs to, tried in this order:

1. ``events``: exact event names (compared case-insensitively, with spaces and hyphens read as
   underscores, so ``"Order Completed"`` matches ``order_completed``);
2. ``patterns``: regular expressions searched in the normalised event name, in order;
3. otherwise the event has no stage (it is kept, and reported as unmapped).

``aliases`` map the names analysts use for stages (English, Polish, Romanian and Chinese
material) to the canonical stage, so a ``stage`` column written as ``Świadomość`` or ``认知``
is understood.
Aliases are compared after lower-casing and stripping diacritics (``Rozważenie`` = ``rozwazenie``).

Presets: :func:`five_stage` (awareness, consideration, purchase, retention, advocacy) and
:func:`seven_stage` (adds adoption after purchase and expansion after retention).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = ["StageModel", "five_stage", "seven_stage", "normalise_event", "normalise_label"]


def normalise_label(text: str) -> str:
    """Lower-case, strip, drop diacritics: the form stage names and aliases are compared in."""
    decomposed = unicodedata.normalize("NFKD", str(text).strip().lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).replace("ł", "l")


def normalise_event(text: str) -> str:
    """Lower-case and read runs of spaces/hyphens as one underscore (the engine does the same)."""
    return re.sub(r"[\s\-]+", "_", str(text).strip().lower())


# Stage-name aliases, by canonical stage. Sources: the list (Polish, Romanian, Chinese
# journey-map vocabulary) plus the usual English synonyms in marketing-funnel material.
# fmt: off
_ALIASES: dict[str, tuple[str, ...]] = {
    "awareness": (
        "aware", "discovery", "attention", "reach", "top of funnel", "tofu",
        "świadomość", "conștientizare", "conştientizare", "constientizare", "notorietate",
        "认知", "知晓", "认识",
    ),
    "consideration": (
        "consider", "interest", "evaluation", "research", "intent", "middle of funnel", "mofu",
        "rozważenie", "rozważanie", "zainteresowanie", "considerare", "evaluare", "interes",
        "考虑", "兴趣", "评估",
    ),
    "purchase": (
        "buy", "conversion", "convert", "decision", "transaction", "order", "bottom of funnel",
        "bofu", "zakup", "decyzja", "cumpărare", "achiziție", "achiziţie", "decizie",
        "购买", "转化", "决策",
    ),
    "adoption": (
        "onboarding", "activation", "usage", "use", "przyjęcie", "adopcja", "aktywacja",
        "adopție", "adoptare", "activare", "采用", "使用", "激活",
    ),
    "retention": (
        "retain", "loyalty", "repeat", "engagement", "utrzymanie", "lojalność", "retencja",
        "retenție", "retenţie", "fidelizare", "loialitate", "留存", "忠诚", "保留",
    ),
    "expansion": (
        "expand", "upsell", "cross-sell", "growth", "ekspansja", "rozszerzenie", "rozwój",
        "expansiune", "extindere", "扩展", "增购", "拓展",
    ),
    "advocacy": (
        "advocate", "recommendation", "referral", "promotion", "rzecznictwo", "polecanie",
        "rekomendacja", "susținere", "susţinere", "recomandare", "promovare",
        "倡导", "推荐", "拥护",
    ),
}
# fmt: on

# Default event vocabularies: cjlib.synth's names, GA4 recommended events, Segment/Amplitude
# e-commerce spec names (normalised: lower case, underscores).
# fmt: off
_EVENTS: dict[str, tuple[str, ...]] = {
    "awareness": (
        "ad_impression", "content_view", "first_visit", "first_open", "view_promotion",
        "select_promotion", "ad_viewed", "ad_clicked", "promotion_viewed", "promotion_clicked",
        "campaign_details", "page_view", "session_start", "landing_page_view",
    ),
    "consideration": (
        "product_view", "compare_products", "add_to_cart", "begin_checkout", "view_item",
        "view_item_list", "select_item", "add_to_wishlist", "view_cart", "add_shipping_info",
        "add_payment_info", "product_viewed", "product_list_viewed", "product_clicked",
        "product_added", "product_added_to_wishlist", "cart_viewed", "checkout_started",
        "checkout_step_viewed", "checkout_step_completed", "payment_info_entered", "sign_up",
        "signed_up", "generate_lead",
    ),
    "purchase": ("purchase", "order_completed", "checkout_completed", "in_app_purchase"),
    "adoption": ("onboarding_completed", "tutorial_complete", "first_use", "activated"),
    "retention": (
        "repeat_purchase", "login", "subscription_renewed", "order_repeated", "reorder",
    ),
    "expansion": ("upgrade", "cross_sell_purchase", "plan_upgraded", "subscription_upgraded"),
    "advocacy": (
        "review_submitted", "referral_sent", "share", "product_reviewed", "product_shared",
        "cart_shared", "referral_completed",
    ),
}
# fmt: on

_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"(^|_)(review|referr?al|share|recommend)", "advocacy"),
    (r"(^|_)(upgrade|upsell|cross_sell)", "expansion"),
    (r"(^|_)(repeat|renew|reorder)", "retention"),
    (r"(^|_)onboard", "adoption"),
    # completed payments and orders as shops name them (payment_done, order_placed,
    # checkout_success...); choosing a payment or delivery method is still consideration
    (
        r"(^|_)(purchase|purchased|paid|(order|checkout|payment|transaction)_(completed?|done|"
        r"placed|confirmed|success|succeeded|successful))($|_)",
        "purchase",
    ),
    (
        r"(^|_)(product|cart|checkout|wishlist|compare|catalog|category|search|payment|delivery|"
        r"shipping)",
        "consideration",
    ),
    (r"(^|_)(impression|ad_|promotion|first_visit|landing)", "awareness"),
)


@dataclass(frozen=True)
class StageModel:
    """Ordered journey stages and the event -> stage mapping.

    Parameters
    ----------
    stages
        Stage names in journey order (earliest first).
    events
        ``{event name: stage}``, exact names, compared in :func:`normalise_event` form.
    patterns
        ``((regex, stage), ...)`` searched in the normalised event name, first match wins.
    aliases
        ``{alias: stage}`` for reading a ``stage`` column written with other names.
    name
        A label shown in reports.
    repeats
        ``{stage: later stage}``: a customer's events in ``stage`` after their first one there
        count as the later stage. The presets have ``{"purchase": "retention"}``: a second
        order is a repeat purchase, so an order table shows retention. Applies to stages read
        from event names, not to a ``stage`` column.
    """

    stages: tuple[str, ...]
    events: Mapping[str, str] = field(default_factory=dict)
    patterns: tuple[tuple[str, str], ...] = ()
    aliases: Mapping[str, str] = field(default_factory=dict)
    name: str = "custom"
    repeats: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        stages = tuple(str(s) for s in self.stages)
        if len(stages) < 2:
            raise ValueError(f"stages must list at least 2 stages in order, got {list(stages)}")
        if len(set(stages)) != len(stages):
            dup = sorted({s for s in stages if stages.count(s) > 1})
            raise ValueError(f"stages must be unique, got duplicates {dup}")
        object.__setattr__(self, "stages", stages)
        events = {
            normalise_event(e): self._check_stage(s, f"events[{e!r}]")
            for e, s in dict(self.events).items()
        }
        object.__setattr__(self, "events", events)
        patterns = []
        for pat, stage in self.patterns:
            try:
                re.compile(pat)
            except re.error as exc:
                raise ValueError(
                    f"patterns: {pat!r} is not a valid regular expression: {exc}"
                ) from None
            patterns.append((pat, self._check_stage(stage, f"patterns[{pat!r}]")))
        object.__setattr__(self, "patterns", tuple(patterns))
        aliases = {normalise_label(s): s for s in stages}
        for alias, stage in dict(self.aliases).items():
            aliases[normalise_label(alias)] = self._check_stage(stage, f"aliases[{alias!r}]")
        object.__setattr__(self, "aliases", aliases)
        repeats = {}
        for first, later in dict(self.repeats).items():
            a = self._check_stage(aliases.get(normalise_label(first), first), "repeats")
            b = self._check_stage(aliases.get(normalise_label(later), later), f"repeats[{first!r}]")
            if stages.index(b) <= stages.index(a):
                raise ValueError(f"repeats: {b!r} must come after {a!r} in {list(stages)}")
            repeats[a] = b
        object.__setattr__(self, "repeats", repeats)

    def _check_stage(self, stage: str, where: str) -> str:
        if stage not in self.stages:
            raise ValueError(
                f"{where} maps to unknown stage {stage!r}; stages are {list(self.stages)}"
            )
        return stage

    # -- lookups -------------------------------------------------------------------------------
    def index(self, stage: str) -> int:
        """Position of ``stage`` (0 = earliest); aliases accepted."""
        return self.stages.index(self.resolve(stage))

    def resolve(self, label: str) -> str:
        """Canonical stage for a stage name or alias; ``KeyError`` with suggestions if unknown."""
        key = normalise_label(label)
        if key in self.aliases:
            return self.aliases[key]
        import difflib

        close = difflib.get_close_matches(key, list(self.aliases), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(repr(self.aliases[c]) for c in close)}?" if close else ""
        raise KeyError(f"unknown stage {label!r}: stages are {list(self.stages)}{hint}")

    def stage_of(self, event: str) -> str | None:
        """Stage of one event name (exact names first, then patterns), or ``None``."""
        key = normalise_event(event)
        if key in self.events:
            return self.events[key]
        for pat, stage in self.patterns:
            if re.search(pat, key):
                return stage
        return None

    # -- derivation ------------------------------------------------------------------------------
    def with_events(
        self,
        mapping: Mapping[str, str] | None = None,
        *,
        patterns: Iterable[tuple[str, str]] = (),
        replace: bool = False,
    ) -> StageModel:
        """A copy with extra (or, with ``replace=True``, only these) event names and patterns.

        Targets may be stage names or aliases. Added patterns are tried before the existing ones.
        """
        new_events = {} if replace else dict(self.events)
        new_events.update({e: self.resolve(s) for e, s in (mapping or {}).items()})
        new_patterns = tuple((p, self.resolve(s)) for p, s in patterns)
        if not replace:
            new_patterns += self.patterns
        return StageModel(
            self.stages, new_events, new_patterns, self.aliases, self.name, self.repeats
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "stages": list(self.stages),
            "events": dict(self.events),
            "patterns": [list(p) for p in self.patterns],
            "repeats": dict(self.repeats),
        }

    @classmethod
    def from_dict(cls, spec: Mapping) -> StageModel:
        """Build from ``{"stages": [...], "events": {...}, "patterns": [[re, stage], ...]}``.

        ``preset: five_stage`` (or ``seven_stage``) starts from a preset and adds the rest.
        """
        spec = dict(spec)
        preset = spec.pop("preset", None)
        if preset is not None:
            base = preset_model(preset)
            return base.with_events(spec.get("events"), patterns=spec.get("patterns", ()))
        if "stages" not in spec:
            raise ValueError(
                f"a stage model spec needs 'stages' (or 'preset'), got keys {sorted(spec)}"
            )
        return cls(
            spec["stages"],
            spec.get("events", {}),
            tuple(tuple(p) for p in spec.get("patterns", ())),
            spec.get("aliases", {}),
            spec.get("name", "custom"),
            spec.get("repeats", {}),
        )

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{i + 1}</td><td>{s}</td><td>"
            + ", ".join(sorted(e for e, st in self.events.items() if st == s))
            + "</td></tr>"
            for i, s in enumerate(self.stages)
        )
        return (
            f"<table><caption>Stage model: {self.name}</caption><tr><th>#</th><th>stage</th>"
            f"<th>events</th></tr>{rows}</table>"
        )


def _preset(name: str, stages: tuple[str, ...], fold: Mapping[str, str]) -> StageModel:
    """Build a preset; ``fold`` sends stages the preset lacks to the one it uses instead."""

    def target(stage: str) -> str:
        return fold.get(stage, stage)

    events = {e: target(s) for s, names in _EVENTS.items() for e in names}
    patterns = tuple((p, target(s)) for p, s in _PATTERNS)
    aliases = {a: target(s) for s, names in _ALIASES.items() for a in (s, *names)}
    repeats = {"purchase": "retention"}  # a second order is a repeat purchase
    return StageModel(stages, events, patterns, aliases, name, repeats)


def five_stage() -> StageModel:
    """Awareness, consideration, purchase, retention, advocacy.

    Adoption and expansion events (and aliases) fold into retention.
    """
    return _preset(
        "five_stage",
        ("awareness", "consideration", "purchase", "retention", "advocacy"),
        {"adoption": "retention", "expansion": "retention"},
    )


def seven_stage() -> StageModel:
    """Awareness, consideration, purchase, adoption, retention, expansion, advocacy."""
    return _preset(
        "seven_stage",
        (
            "awareness",
            "consideration",
            "purchase",
            "adoption",
            "retention",
            "expansion",
            "advocacy",
        ),
        {},
    )


_PRESETS = {"five_stage": five_stage, "seven_stage": seven_stage}


def preset_model(name: str) -> StageModel:
    """A preset by name: ``"five_stage"`` or ``"seven_stage"``."""
    if name not in _PRESETS:
        raise ValueError(f"stage model preset must be one of {sorted(_PRESETS)}, got {name!r}")
    return _PRESETS[name]()

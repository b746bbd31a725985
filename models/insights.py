"""Member insights (contract section 13), pure: the eligible purchases by product group that a
swipe adds to its household-month, and how far the running month is from the next tier.

By-group sums live in the household-month accumulator in Redis as fields ``g:<group>`` (signed
eligible cents), written in the same atomic step as the other sums; ``Accumulator`` ignores
them, so the bonus arithmetic is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from models.rules import Tier

GROUP_FIELD = "g:"
NOT_ELIGIBLE = 0  # the line code of a line that is not eligible (models.bonus)


def group_fields(
    groups_and_amounts: Iterable[tuple[str, int]], codes: Sequence[int], sign: int
) -> dict[str, int]:
    """``{"g:<group>": signed eligible cents}`` of one swipe's lines (zero sums left out)."""
    out: dict[str, int] = {}
    for (group, amount), code in zip(groups_and_amounts, codes, strict=True):
        if code != NOT_ELIGIBLE:
            name = GROUP_FIELD + group
            out[name] = out.get(name, 0) + sign * amount
    return {k: v for k, v in out.items() if v}


def by_group(fields: Mapping[str, int | str | bytes]) -> dict[str, int]:
    """The by-group sums of an accumulator hash, as ``{group: cents}``, sorted by group."""
    out: dict[str, int] = {}
    for raw_key, raw_value in fields.items():
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        if key.startswith(GROUP_FIELD):
            value = int(raw_value)
            if value:
                out[key[len(GROUP_FIELD) :]] = value
    return dict(sorted(out.items()))


def to_next_tier_cents(purchases_cents: int, tiers: Sequence[Tier]) -> int | None:
    """Eligible purchases still needed for the next tier; None at the top tier."""
    for tier in sorted(tiers, key=lambda t: t.from_cents):
        if tier.from_cents > purchases_cents:
            return tier.from_cents - purchases_cents
    return None

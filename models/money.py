"""Integer money arithmetic: cents, basis points, millilitres. No floats."""

from __future__ import annotations


def div_round_half_up(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (towards +inf at exactly .5)."""
    if denominator <= 0:
        raise ValueError(f"denominator must be positive, got {denominator}")
    return (2 * numerator + denominator) // (2 * denominator)


def format_cents(cents: int) -> str:
    """``123456`` -> ``'1234.56 €'`` for people (never parsed back)."""
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d} €"

"""``loyalty simulate --html FILE``: the what-if as one self-contained page, a chart per co-op.

Built on ``stream.reporting.html`` (Jinja2 page, Matplotlib bar charts as inline SVG); imported
only when a page is asked for, since Matplotlib takes a second to import.
"""

from __future__ import annotations

from pathlib import Path

from models.rules import Rules
from models.simulate import Sums
from stream.bonus.simulate import SimulateRun
from stream.reporting.html import (
    Figure,
    Page,
    Section,
    Table,
    bar_chart,
    format_cents,
    format_int,
    write_page,
)

COLUMNS = (
    "tier band (current)",
    "household-months",
    "up",
    "down",
    "current",
    "candidate",
    "difference",
)


def _row(label: str, s: Sums) -> list[str]:
    return [
        label,
        format_int(s.household_months),
        format_int(s.moved_up),
        format_int(s.moved_down),
        format_cents(s.current_cents),
        format_cents(s.candidate_cents),
        format_cents(s.difference_cents),
    ]


def write_simulation_page(
    result: SimulateRun, current: Rules, path: Path, *, candidate_path: Path
) -> Path:
    sim = result.simulation
    months = f"{result.months[0]}..{result.months[-1]}"
    total = sim.total
    sections = [
        Section(
            "Total",
            intro=" ".join(result.notes),
            figures=[
                Figure("Current Bonus", format_cents(total.current_cents)),
                Figure("Candidate Bonus", format_cents(total.candidate_cents)),
                Figure("Difference", format_cents(total.difference_cents)),
                Figure("Households", format_int(sim.households)),
                Figure("Households moving tier", format_int(len(sim.moved_households))),
                Figure("Households whose Bonus changes", format_int(len(sim.changed))),
            ],
        )
    ]
    for co_op in sorted(sim.by_co_op):
        bands = sim.bands(co_op, current)
        labels = [label for label, _ in bands]
        table = Table(
            COLUMNS,
            [_row(label, s) for label, s in bands] + [_row("all bands", sim.by_co_op[co_op])],
            title=f"{co_op}: Bonus per tier band",
        )
        chart = bar_chart(
            f"{co_op}: Bonus per tier band, current and candidate",
            labels,
            {
                "current": [s.current_cents / 100 for _, s in bands],
                "candidate": [s.candidate_cents / 100 for _, s in bands],
            },
            unit="€",
            horizontal=True,
            table=table,
        )
        sections.append(
            Section(
                f"Co-op {co_op}",
                figures=[
                    Figure("Difference", format_cents(sim.by_co_op[co_op].difference_cents)),
                    Figure("Household-months", format_int(sim.by_co_op[co_op].household_months)),
                ],
                charts=[chart],
            )
        )
    page = Page(
        "Bonus what-if",
        f"{months}: {candidate_path.name} against the current rules (from {result.source}; "
        f"changed: {', '.join(result.changed) or 'none'})",
        sections=sections,
    )
    return write_page(page, path)

"""One self-contained HTML page: key figures, charts (inline SVG) and tables, no external URL.

The page is a Jinja2 template with autoescaping; charts are drawn by Matplotlib (its
object-oriented ``Figure``, no global pyplot state) and embedded as SVG text, so the file opens
anywhere, offline, and can be mailed as it is. Every chart carries its figures as a table too
(``Chart.table``): the numbers are readable, searchable and testable without the picture.
Matplotlib takes about a second to import: the CLI imports this module lazily.

Usage::

    page = Page("Loyalty report", "November 2026", sections=[
        Section("Purchases", figures=[Figure("Sales", format_cents(123456))],
                charts=[bar_chart("Sales by group", ["food", "fuel"], {"sales": [12.0, 3.5]},
                                  unit="€")]),
    ])
    write_page(page, Path("report.html"))

Money stays integer cents up to here; ``format_cents`` prints it exactly. Chart axes are
drawing only and take floats.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jinja2
import matplotlib
from markupsafe import Markup
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import StrMethodFormatter

PALETTE = ("#1f6f5c", "#e0a526", "#3b6fb6", "#c4513a", "#7a5aa6", "#5b8c2a", "#8c6d46")


# -- number formatting -------------------------------------------------------------------------


def format_int(value: int) -> str:
    """``1234567`` -> ``1,234,567``."""
    return f"{value:,}"


def format_cents(cents: int, currency: str = "€") -> str:
    """Integer cents as euros, exactly: ``-123456`` -> ``-1,234.56 €``."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{rest:02d} {currency}".rstrip()


def format_bp(bp: int) -> str:
    """Basis points as a percentage, exactly: ``150`` -> ``1.50 %``."""
    sign = "-" if bp < 0 else ""
    whole, rest = divmod(abs(bp), 100)
    return f"{sign}{whole}.{rest:02d} %"


def format_ml_as_litres(ml: int) -> str:
    """Millilitres as litres with one decimal, rounded half up: ``12345`` -> ``12.3 l``."""
    sign = "-" if ml < 0 else ""
    tenths = (abs(ml) + 50) // 100
    return f"{sign}{tenths // 10:,}.{tenths % 10} l"


# -- page content ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figure:
    """One key figure: a label and its value, already formatted."""

    label: str
    value: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """A table of formatted cells; columns after the first are right-aligned (numbers)."""

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    title: str = ""
    note: str = ""


@dataclass(frozen=True, slots=True)
class Chart:
    """A drawn chart (SVG markup) and the figures it shows, as a table."""

    title: str
    svg: Markup
    table: Table | None = None
    note: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    intro: str = ""
    figures: Sequence[Figure] = ()
    charts: Sequence[Chart] = ()
    tables: Sequence[Table] = ()


@dataclass(frozen=True, slots=True)
class Page:
    title: str
    subtitle: str = ""
    sections: Sequence[Section] = ()
    footer: str = ""
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


# -- charts ------------------------------------------------------------------------------------


def _new_figure(width: float, height: float) -> tuple[MplFigure, Axes]:
    fig = MplFigure(figsize=(width, height), layout="constrained")
    return fig, fig.add_subplot()


_SVG_PROLOGUE = re.compile(r"\A.*?(?=<svg\b)", re.S)


def _svg(fig: MplFigure) -> Markup:
    buffer = io.StringIO()
    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
            "svg.hashsalt": "loyalty-report",  # stable element ids: same data, same page
            "font.family": "sans-serif",
            "font.size": 9,
        }
    ):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = _SVG_PROLOGUE.sub("", buffer.getvalue())  # drop <?xml ...> and the DOCTYPE
    # The width/height in pt make the chart a fixed size: let CSS scale it instead.
    text = re.sub(r'(<svg\b[^>]*?)\swidth="[^"]*"\sheight="[^"]*"', r"\1", text, count=1)
    return Markup(text)  # noqa: S704 - Matplotlib's own SVG output, its text escaped by it


def _style_axes(ax: Axes, unit: str, *, horizontal: bool = False) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x" if horizontal else "y", color="#dddddd", linewidth=0.6)
    (ax.xaxis if horizontal else ax.yaxis).set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_axisbelow(True)
    if unit:
        (ax.set_xlabel if horizontal else ax.set_ylabel)(unit)


def _check_series(labels: Sequence[str], series: Mapping[str, Sequence[float]]) -> None:
    if not series:
        raise ValueError("a chart needs at least one series")
    for name, values in series.items():
        if len(values) != len(labels):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(labels)} labels")


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    unit: str = "",
    horizontal: bool = False,
    stacked: bool = False,
    table: Table | None = None,
    note: str = "",
) -> Chart:
    """Bars per label, one colour per series (side by side, or ``stacked``)."""
    _check_series(labels, series)
    height = max(2.8, 0.32 * len(labels) + 1.2) if horizontal else 3.2
    fig, ax = _new_figure(7.5, height)
    positions = list(range(len(labels)))
    count = len(series)
    width = 0.8 if stacked else 0.8 / count
    base = [0.0] * len(labels)
    for index, (name, values) in enumerate(series.items()):
        offset = 0.0 if stacked else (index - (count - 1) / 2) * width
        where = [p + offset for p in positions]
        colour = PALETTE[index % len(PALETTE)]
        if horizontal:
            ax.barh(where, values, height=width, left=base, label=name, color=colour)
        else:
            ax.bar(where, values, width=width, bottom=base, label=name, color=colour)
        if stacked:
            base = [b + float(v) for b, v in zip(base, values, strict=True)]
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()  # the first label on top, as in the table
    else:
        ax.set_xticks(positions, labels, rotation=30 if len(labels) > 6 else 0, ha="right")
    _style_axes(ax, unit, horizontal=horizontal)
    if count > 1:
        ax.legend(frameon=False)
    return Chart(title, _svg(fig), table, note)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    unit: str = "",
    table: Table | None = None,
    note: str = "",
) -> Chart:
    """One line per series over ``labels`` (days, months, ...), with markers."""
    _check_series(labels, series)
    fig, ax = _new_figure(7.5, 3.2)
    positions = list(range(len(labels)))
    for index, (name, values) in enumerate(series.items()):
        ax.plot(positions, values, marker="o", markersize=3, label=name, color=PALETTE[index])
    step = max(1, len(labels) // 12)
    ax.set_xticks(positions[::step], list(labels)[::step], rotation=30, ha="right")
    _style_axes(ax, unit)
    if len(series) > 1:
        ax.legend(frameon=False)
    return Chart(title, _svg(fig), table, note)


# -- the page ----------------------------------------------------------------------------------

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ page.title }}{% if page.subtitle %}: {{ page.subtitle }}{% endif %}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2a27;
         margin: 0 auto; max-width: 64rem; padding: 1.5rem; line-height: 1.4; }
  h1 { margin-bottom: 0.2rem; } .subtitle { color: #55605d; margin-top: 0; }
  h2 { border-bottom: 2px solid #1f6f5c; padding-bottom: 0.2rem; margin-top: 2.2rem; }
  .figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr));
             gap: 0.8rem; margin: 1rem 0; }
  .figure { background: #f1f6f4; border-radius: 6px; padding: 0.7rem 0.9rem; }
  .figure .label { font-size: 0.85rem; color: #55605d; }
  .figure .value { font-size: 1.35rem; font-weight: 600; font-variant-numeric: tabular-nums; }
  .figure .note, .note { font-size: 0.8rem; color: #6b7673; }
  figure.chart { margin: 1.2rem 0; } figure.chart svg { width: 100%; height: auto; }
  figcaption { font-weight: 600; margin-bottom: 0.3rem; }
  table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
  th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e2e8e6; text-align: right;
           font-variant-numeric: tabular-nums; }
  th:first-child, td:first-child { text-align: left; }
  th { background: #f1f6f4; }
  details summary { cursor: pointer; color: #55605d; font-size: 0.85rem; }
  footer { margin-top: 3rem; font-size: 0.8rem; color: #6b7673; }
  @media print { details { display: none; } h2 { break-after: avoid; } }
</style>
</head>
<body>
<h1>{{ page.title }}</h1>
{% if page.subtitle %}<p class="subtitle">{{ page.subtitle }}</p>{% endif %}
{% macro table_html(t) %}
<table>
{% if t.title %}<caption>{{ t.title }}</caption>{% endif %}
<thead><tr>{% for c in t.columns %}<th scope="col">{{ c }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody>
</table>
{% if t.note %}<p class="note">{{ t.note }}</p>{% endif %}
{% endmacro %}
{% for section in page.sections %}
<section>
<h2>{{ section.title }}</h2>
{% if section.intro %}<p>{{ section.intro }}</p>{% endif %}
{% if section.figures %}
<div class="figures">
{% for f in section.figures %}<div class="figure"><div class="label">{{ f.label }}</div>
<div class="value">{{ f.value }}</div>{% if f.note %}<div class="note">{{ f.note }}</div>{% endif %}
</div>
{% endfor %}</div>
{% endif %}
{% for chart in section.charts %}
<figure class="chart">
<figcaption>{{ chart.title }}</figcaption>
{{ chart.svg }}
{% if chart.note %}<p class="note">{{ chart.note }}</p>{% endif %}
{% if chart.table %}<details><summary>Figures of this chart</summary>
{{ table_html(chart.table) }}</details>{% endif %}
</figure>
{% endfor %}
{% for t in section.tables %}{{ table_html(t) }}{% endfor %}
</section>
{% endfor %}
<footer>{% if page.footer %}{{ page.footer }}<br>{% endif %}
Generated {{ page.generated_at.strftime("%Y-%m-%d %H:%M UTC") }}.</footer>
</body>
</html>
"""

_ENV = jinja2.Environment(
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True
)


def render_page(page: Page) -> str:
    """The whole page as one HTML string."""
    return _ENV.from_string(_TEMPLATE).render(page=page)


def write_page(page: Page, path: Path) -> Path:
    """Render ``page`` and write it to ``path`` (UTF-8), through a temporary file."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(render_page(page), encoding="utf-8")
    partial.replace(path)
    return path

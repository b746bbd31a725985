"""The report page helpers: exact number formatting, escaping, charts inline, nothing external."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stream.reporting.html import (
    Chart,
    Figure,
    Page,
    Section,
    Table,
    bar_chart,
    format_bp,
    format_cents,
    format_int,
    format_ml_as_litres,
    line_chart,
    render_page,
    write_page,
)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def external_references(html: str) -> list[str]:
    """Anything that would make a browser fetch: src/href to a URL, url(...), @import."""
    found = []
    parser = _Tags()
    parser.feed(html)
    for tag, attrs in parser.tags:
        for name in ("src", "href", "xlink:href", "data", "action"):
            value = attrs.get(name)
            if value is not None and not value.startswith(("#", "data:")):
                found.append(f"<{tag} {name}={value!r}>")
        if tag in {"script", "link", "iframe", "img", "object", "embed"}:
            found.append(f"<{tag}>")
    found += re.findall(r"url\(\s*['\"]?(?!#|data:)[^)]*\)", html)
    found += re.findall(r"@import\b[^;]*", html)
    return found


@pytest.mark.parametrize(
    ("cents", "text"),
    [
        (0, "0.00 €"),
        (5, "0.05 €"),
        (123456, "1,234.56 €"),
        (-123456, "-1,234.56 €"),
        (-5, "-0.05 €"),
    ],
)
def test_cents_are_printed_exactly(cents: int, text: str) -> None:
    assert format_cents(cents) == text


def test_other_formats() -> None:
    assert format_int(1234567) == "1,234,567"
    assert format_bp(150) == "1.50 %" and format_bp(5) == "0.05 %" and format_bp(-250) == "-2.50 %"
    assert format_ml_as_litres(12345) == "12.3 l"
    assert format_ml_as_litres(12350) == "12.4 l"  # half up
    assert format_ml_as_litres(1_000_000) == "1,000.0 l"


def test_a_page_with_charts_is_one_self_contained_file(tmp_path: Path) -> None:
    groups = ["food", "fuel", "<b>home & garden</b>"]
    table = Table(
        ["group", "sales"], [[g, format_cents(c)] for g, c in zip(groups, [1, 2, 3], strict=True)]
    )
    bars = bar_chart("Sales by group", groups, {"sales": [10.0, 20.5, 3.0]}, unit="€", table=table)
    stacked = bar_chart(
        "Two series",
        ["a", "b"],
        {"one": [1, 2], "two": [3, 4]},
        horizontal=True,
        stacked=True,
    )
    lines = line_chart("Daily", [f"2026-11-{d:02d}" for d in range(1, 31)], {"x": list(range(30))})
    page = Page(
        "Report <title>",
        "November 2026",
        [
            Section(
                "Purchases & returns",
                "An intro with <script>alert(1)</script> in it.",
                figures=[Figure("Sales", format_cents(98765432), note="net of returns")],
                charts=[bars, stacked, lines],
                tables=[Table(["a", "b"], [["x", "1"]], title="A table")],
            )
        ],
        footer="Made by tests",
        generated_at=datetime(2026, 12, 1, 8, 30, tzinfo=UTC),
    )
    path = write_page(page, tmp_path / "report.html")
    html = path.read_text(encoding="utf-8")
    assert not (tmp_path / ".report.html.partial").exists()

    assert html.startswith("<!DOCTYPE html>")
    assert external_references(html) == [], external_references(html)
    assert "<script" not in html, "the text is escaped, never markup"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Report &lt;title&gt;" in html and "Purchases &amp; returns" in html
    assert "987,654.32 €" in html and "net of returns" in html
    assert "Generated 2026-12-01 08:30 UTC" in html
    # each chart is inline SVG whose text is text (labels searchable), XML well formed
    svgs = re.findall(r"<svg\b.*?</svg>", html, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("viewBox")
    assert "2026-11-01" in svgs[2]
    assert "&lt;b&gt;home &amp; garden&lt;/b&gt;" in svgs[0]  # a label is escaped by Matplotlib
    # the chart's figures as a table
    assert "<td>0.03 €</td>" in html


def test_the_same_data_draws_the_same_svg() -> None:
    def draw() -> str:
        return str(bar_chart("t", ["a", "b"], {"s": [1, 2]}).svg)

    assert draw() == draw()


def test_a_series_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ValueError, match="series 's' has 1 values for 2 labels"):
        bar_chart("t", ["a", "b"], {"s": [1]})
    with pytest.raises(ValueError, match="at least one series"):
        line_chart("t", ["a"], {})


def test_render_page_of_an_empty_page() -> None:
    html = render_page(Page("Empty"))
    assert "<h1>Empty</h1>" in html and "<section>" not in html
    assert isinstance(Chart("x", bar_chart("t", ["a"], {"s": [1]}).svg).svg, str)

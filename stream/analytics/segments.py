"""Household segments, assortment aggregates and the marketing export.

The SQL lives in ``stream/sql/segments.sql`` (one named block per query, reusable by
dashboards); this module runs it and applies the register's consent rules on export.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from models.consent import CHANNELS as CHANNELS  # noqa: PLC0414 (re-exported)
from models.consent import HOUSEHOLD_REASONS as HOUSEHOLD_REASONS  # noqa: PLC0414
from models.consent import PERSON_REASONS as PERSON_REASONS  # noqa: PLC0414
from models.consent import PRODUCT_DATA_BAN as PRODUCT_DATA_BAN  # noqa: PLC0414
from models.months import month_end, month_start, months_back
from stream.clickhouse.engine import ClickHouse
from stream.errors import NoSegmentsError as NoSegmentsError  # noqa: PLC0414 (re-exported: its old home)

SQL_FILE = Path(__file__).with_name("sql") / "segments.sql"
SEGMENTS_TABLE = "household_segments"
SEGMENT_COLUMNS = (
    "build_month",
    "months",
    "household_key",
    "segment",
    "spend_cents",
    "visit_days",
    "recency_days",
    "top_group",
    "top_group_share_bp",
    "campaign_share_bp",
    "fuel",
)
DEFAULT_TIMEZONE = "Europe/Helsinki"

_NAME_LINE = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def load_sql(path: Path = SQL_FILE) -> dict[str, str]:
    """The named blocks of a ``-- name:`` SQL file, comment lines and the final ``;`` removed."""
    text = path.read_text(encoding="utf-8")
    marks = list(_NAME_LINE.finditer(text))
    blocks: dict[str, str] = {}
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        body = "\n".join(
            line
            for line in text[mark.end() : end].splitlines()
            if not line.lstrip().startswith("--")
        ).strip()
        blocks[mark.group(1)] = body.removesuffix(";").rstrip()
    return blocks


SQL: dict[str, str] = load_sql()


@dataclass(frozen=True, slots=True)
class SegmentRules:
    """Thresholds of the segment codes (see ``segment_rows`` in segments.sql).

    Spend and visits are per month on average over the window: a 3-month build puts a
    household in ``spend:high`` from 3 x 300 € of net purchases.
    """

    spend_medium_cents: int = 10_000  # 100 €/month
    spend_high_cents: int = 30_000  # 300 €/month
    spend_top_cents: int = 60_000  # 600 €/month
    visits_regular_days: int = 2  # shopping days per month
    visits_frequent_days: int = 8
    lapsed_days: int = 60  # since the last purchase day, counted to the end of the as-of month
    affinity_share_bp: int = 2_500  # top non-fuel group >= 25 % of non-fuel spend
    campaign_share_bp: int = 2_000  # >= 20 % of spend on campaign lines

    def params(self) -> dict[str, int]:
        return {
            "spend_medium_cents": self.spend_medium_cents,
            "spend_high_cents": self.spend_high_cents,
            "spend_top_cents": self.spend_top_cents,
            "visits_regular_days": self.visits_regular_days,
            "visits_frequent_days": self.visits_frequent_days,
            "lapsed_days": self.lapsed_days,
            "affinity_share_bp": self.affinity_share_bp,
            "campaign_share_bp": self.campaign_share_bp,
        }


def build_segments(
    client: ClickHouse,
    as_of_month: date,
    months: int,
    *,
    rules: SegmentRules | None = None,
    tz: str = DEFAULT_TIMEZONE,
    excluded: Iterable[int] = (),
) -> int:
    """Rebuild ``household_segments`` for the build month of ``as_of_month``.

    The window is the ``months`` bonus months ending with ``as_of_month`` (any day of it);
    ``tz`` is the rules' time zone, for the local day of a visit. The build month's partition
    is dropped and written again, so a rebuild replaces (readers may see it empty for the
    moment in between). Households in ``excluded`` (pseudonymous keys of households banning
    product-data marketing) get no row at all. Returns the number of households segmented.
    """
    if not 1 <= months <= 255:
        raise ValueError("months must be between 1 and 255")
    as_of = month_start(as_of_month)
    params: dict[str, Any] = {
        "as_of": as_of,
        "as_of_end": month_end(as_of),
        "from_month": months_back(as_of, months - 1),
        "months": months,
        "tz": tz,
        "excluded": sorted(set(excluded)),
        **(rules or SegmentRules()).params(),
    }
    client.execute(f"ALTER TABLE {SEGMENTS_TABLE} DROP PARTITION ID '{as_of:%Y%m}'")
    client.execute(
        f"INSERT INTO {SEGMENTS_TABLE} ({', '.join(SEGMENT_COLUMNS)}) {SQL['segment_rows']}",
        params,
    )
    rows = client.query(SQL["build_households"], {"build_month": as_of})
    return int(rows[0][0]) if rows else 0


def latest_build(client: ClickHouse) -> tuple[date, int] | None:
    """(build month, window months) of the newest build, or ``None`` if none was built."""
    rows = client.query(SQL["latest_build"])
    if not rows:
        return None
    return rows[0][0], int(rows[0][1])


def segment_sizes(client: ClickHouse, build_month: date) -> dict[str, int]:
    """segment code -> households in the build of ``build_month``."""
    rows = client.query(SQL["segment_sizes"], {"build_month": month_start(build_month)})
    return {str(code): int(n) for code, n in rows}


@dataclass(frozen=True, slots=True)
class AssortmentRow:
    store_id: str
    product_group: str
    month: date
    sales_cents: int
    households: int
    receipts: int
    store_receipts: int
    basket_share_bp: int


def assortment(
    client: ClickHouse, from_month: date, to_month: date, *, min_households: int = 5
) -> list[AssortmentRow]:
    """Store x product group x month aggregates (see ``assortment`` in segments.sql)."""
    rows = client.query(
        SQL["assortment"],
        {
            "from_month": month_start(from_month),
            "to_month": month_start(to_month),
            "min_households": min_households,
        },
    )
    return [
        AssortmentRow(
            str(r[0]), str(r[1]), r[2], int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])
        )
        for r in rows
    ]


# -- export -------------------------------------------------------------------------------

# The consent rules and their reason codes live in ``models.consent`` (imported above).


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

"""The dashboards in ``dashboards/`` as data: panels, their queries, and Grafana's substitutions.

Grafana and its datasource plugins rewrite a query before it reaches the database. The tests
do the same, the way each component does it, so that what runs against ClickHouse or
Prometheus here is what would run from a real Grafana:

ClickHouse (``grafana-clickhouse-datasource`` 4.x), in this order:

1. the plugin's frontend replaces ``$__conditionalAll(condition, $var)`` by ``1=1`` when the
   variable is "All" (or empty), else by the condition;
2. Grafana replaces template variables: ``${var:singlequote}`` -> ``'a','b'``, ``$var`` and
   ``${var}`` -> the plugin's own format (a multi-value as ``'a','b'``, a single value as is);
3. the plugin's backend expands its macros: ``$__timeFilter(col)`` ->
   ``col >= toDateTime(FROM) AND col <= toDateTime(TO)``, ``$__fromTime``/``$__toTime`` ->
   ``toDateTime(unix seconds)``, ``$__dateFilter(col)``, ``$__interval_s``.

Prometheus: Grafana replaces ``$__rate_interval``, ``$__interval``, ``$__range`` (and their
``${...}`` forms) with durations.

Anything with a ``$`` left after that is an unknown variable or macro: an error, so a typo in a
dashboard fails the tests instead of failing in front of a planner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = REPO_ROOT / "dashboards"

CLICKHOUSE_TYPE = "grafana-clickhouse-datasource"
PROMETHEUS_TYPE = "prometheus"
ALL = "$__all"

# Panels that draw no data and need no unit.
LAYOUT_PANELS = frozenset({"row", "text", "news", "dashlist"})


@dataclass(frozen=True)
class Dashboard:
    path: Path
    data: dict[str, Any]

    @property
    def uid(self) -> str:
        return str(self.data["uid"])

    @property
    def title(self) -> str:
        return str(self.data["title"])

    def panels(self) -> Iterator[dict[str, Any]]:
        """Every panel, rows included, with the panels of collapsed rows."""
        for panel in self.data.get("panels", []):
            yield panel
            yield from panel.get("panels", [])

    def data_panels(self) -> Iterator[dict[str, Any]]:
        return (p for p in self.panels() if p.get("type") not in LAYOUT_PANELS)

    def variables(self) -> list[dict[str, Any]]:
        return list(self.data.get("templating", {}).get("list", []))

    def queries(self) -> list[Query]:
        """Every panel target and every query variable, with its datasource."""
        found: list[Query] = []
        for panel in self.data_panels():
            for target in panel.get("targets", []):
                ds = target.get("datasource") or panel.get("datasource") or {}
                text = target.get("rawSql") if ds.get("type") == CLICKHOUSE_TYPE else None
                if text is None:
                    text = target.get("expr", "")
                found.append(
                    Query(self, panel, target, ds.get("type", ""), ds.get("uid", ""), text)
                )
        for var in self.variables():
            if var.get("type") != "query":
                continue
            ds = var.get("datasource") or {}
            raw = var.get("query")
            text = raw.get("rawSql", raw.get("query", "")) if isinstance(raw, dict) else raw
            found.append(Query(self, var, {}, ds.get("type", ""), ds.get("uid", ""), str(text)))
        return found


@dataclass(frozen=True)
class Query:
    dashboard: Dashboard
    panel: dict[str, Any]  # the panel, or the template variable for a variable query
    target: dict[str, Any]  # empty for a variable query
    datasource_type: str
    datasource_uid: str
    text: str

    @property
    def is_variable(self) -> bool:
        return not self.target

    @property
    def name(self) -> str:
        """``dashboard uid / panel title [refId]`` for test ids and messages."""
        if self.is_variable:
            return f"{self.dashboard.uid}/variable {self.panel['name']}"
        return f"{self.dashboard.uid}/{self.panel.get('title', '?')} [{self.target.get('refId')}]"

    @property
    def is_timeseries(self) -> bool:
        """A ClickHouse query shown as time series: its first column must be ``time``."""
        return self.target.get("format") == 0 or self.target.get("queryType") == "timeSeries"

    def expected_columns(self) -> set[str] | None:
        """The columns the panel is configured for (None for a variable query).

        Every column a panel shows gets a display name (and unit) through a ``byName``
        override, so the overrides are the panel's contract with its query; a time-series
        query adds its ``time`` column.
        """
        if self.is_variable:
            return None
        names = {
            o["matcher"]["options"]
            for o in self.panel.get("fieldConfig", {}).get("overrides", [])
            if o.get("matcher", {}).get("id") == "byName"
        }
        return names | ({"time"} if self.is_timeseries else set())

    def legend_labels(self) -> set[str]:
        """Labels a Prometheus target's legend uses (``{{label}}``)."""
        return set(
            re.findall(
                r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}", self.target.get("legendFormat", "")
            )
        )


def load_dashboards(directory: Path = DASHBOARDS_DIR) -> list[Dashboard]:
    return [
        Dashboard(path, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(directory.glob("*.json"))
    ]


def all_queries(datasource_type: str, directory: Path = DASHBOARDS_DIR) -> list[Query]:
    return [
        q
        for d in load_dashboards(directory)
        for q in d.queries()
        if q.datasource_type == datasource_type
    ]


# -- ClickHouse: what the plugin and Grafana do to rawSql ----------------------------------


@dataclass
class Selection:
    """Template variable values as a dashboard user picked them (``ALL`` for "All")."""

    values: dict[str, list[str]] = field(default_factory=dict)

    def is_all(self, name: str) -> bool:
        chosen = self.values.get(name, [ALL])
        return chosen in ([ALL], [""], [])


def _macro_args(text: str, open_paren: int) -> tuple[list[str], int]:
    """Comma-separated arguments of a macro call whose ``(`` is at ``open_paren``.

    Nested parentheses are respected, as in the plugin's ``getMacroArgs``; returns the
    arguments (not stripped) and the index just after the closing ``)``.
    """
    depth, start, args = 0, open_paren + 1, []
    for i in range(open_paren, len(text)):
        char = text[i]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                args.append(text[start:i])
                return args, i + 1
        elif char == "," and depth == 1:
            args.append(text[start:i])
            start = i + 1
    raise ValueError(
        f"unbalanced parentheses in macro at {text[open_paren - 20 : open_paren + 40]!r}"
    )


def apply_conditional_all(sql: str, selection: Selection) -> str:
    """The plugin frontend's ``applyConditionalAll``."""
    macro = "$__conditionalAll("
    while (index := sql.rfind(macro)) >= 0:
        args, end = _macro_args(sql, index + len(macro) - 1)
        if len(args) != 2:
            raise ValueError(f"$__conditionalAll needs 2 arguments, got {args!r}")
        var = re.search(r"\$\{?([A-Za-z0-9_]+)", args[1])
        if var is None:
            raise ValueError(f"$__conditionalAll: no variable in {args[1]!r}")
        phrase = "1=1" if selection.is_all(var.group(1)) else args[0]
        sql = sql[:index] + phrase + sql[end:]
    return sql


def _quoted(values: Sequence[str]) -> str:
    return ",".join("'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'" for v in values)


def replace_variables(
    text: str, values: Mapping[str, Sequence[str]], *, default_format: str = "plugin"
) -> str:
    """Grafana's ``templateSrv.replace`` for the variables in ``values``.

    ``${var:singlequote}`` quotes each value; the plain forms use the datasource's format:
    ``plugin`` (ClickHouse: a list as ``'a','b'``, one value as is) or ``raw``.
    """

    def value_of(name: str, fmt: str | None, whole: str) -> str:
        if name not in values:
            return whole  # not a variable we know: left for the unknown-`$` check
        chosen = list(values[name])
        if fmt == "singlequote":
            return _quoted(chosen)
        if fmt in {"raw", "text"} or default_format == "raw":
            return ",".join(chosen)
        if fmt is not None:
            raise ValueError(f"variable format {fmt!r} is not simulated here")
        return _quoted(chosen) if len(chosen) > 1 else chosen[0]

    text = re.sub(
        r"\$\{([A-Za-z0-9_]+)(?::([A-Za-z]+))?\}",
        lambda m: value_of(m.group(1), m.group(2), m.group(0)),
        text,
    )
    return re.sub(
        r"\$([A-Za-z0-9_]+)\b",
        lambda m: value_of(m.group(1), None, m.group(0)),
        text,
    )


def _epoch(t: datetime) -> int:
    if t.tzinfo is None:
        raise ValueError("time range bounds must be aware datetimes")
    return int(t.timestamp())


def expand_clickhouse_macros(sql: str, start: datetime, end: datetime, interval_s: int) -> str:
    """The plugin backend's macros (``pkg/macros/macros.go``), second precision."""

    def column_filter(name: str, lo: str, hi: str) -> None:
        nonlocal sql
        macro = f"$__{name}("
        while (index := sql.find(macro)) >= 0:
            args, end_at = _macro_args(sql, index + len(macro) - 1)
            if len(args) != 1:
                raise ValueError(f"$__{name} takes one column, got {args!r}")
            column = args[0].strip()
            sql = sql[:index] + f"{column} >= {lo} AND {column} <= {hi}" + sql[end_at:]

    lo, hi = f"toDateTime({_epoch(start)})", f"toDateTime({_epoch(end)})"
    column_filter("timeFilter", lo, hi)
    column_filter("dateFilter", f"toDate('{start:%Y-%m-%d}')", f"toDate('{end:%Y-%m-%d}')")
    sql = sql.replace("$__fromTime", lo).replace("$__toTime", hi)
    return sql.replace("$__interval_s", str(max(interval_s, 1)))


def variable_values(dashboard: Dashboard, selection: Selection) -> dict[str, list[str]]:
    """The value of every template variable: constants and custom ones from the dashboard,
    query variables from ``selection`` (All -> ``ALL``; the macro handles it)."""
    values: dict[str, list[str]] = {}
    for var in dashboard.variables():
        name = var["name"]
        if var.get("type") in {"constant", "textbox", "custom"} and name not in selection.values:
            current = var.get("current", {}).get("value", var.get("query", ""))
            values[name] = list(current) if isinstance(current, list) else [str(current)]
        else:
            values[name] = list(selection.values.get(name, [ALL]))
    return values


def render_clickhouse(
    query: Query,
    start: datetime,
    end: datetime,
    selection: Selection | None = None,
    interval_s: int = 3600,
) -> str:
    """``query.text`` as Grafana would send it to ClickHouse for this range and selection."""
    selection = selection or Selection()
    values = variable_values(query.dashboard, selection)
    sql = apply_conditional_all(query.text, selection)
    sql = replace_variables(sql, values)
    sql = expand_clickhouse_macros(sql, start, end, interval_s)
    leftover = re.findall(r"\$\{?[A-Za-z_][A-Za-z0-9_]*", sql)
    if leftover:
        raise ValueError(f"{query.name}: unknown variables or macros {sorted(set(leftover))}")
    return sql


# -- Prometheus ---------------------------------------------------------------------------


def render_promql(
    query: Query,
    *,
    rate_interval: str = "15s",
    interval: str = "5s",
    range_: str = "5m",
) -> str:
    """``query.text`` with Grafana's built-in interval variables replaced."""
    seconds = _duration_seconds(range_)
    builtins = {
        "__rate_interval": [rate_interval],
        "__interval": [interval],
        "__range": [range_],
        "__range_s": [str(seconds)],
        "__range_ms": [str(seconds * 1000)],
    }
    values = {**builtins, **variable_values(query.dashboard, Selection())}
    expr = replace_variables(query.text, values, default_format="raw")
    leftover = re.findall(r"\$\{?[A-Za-z_][A-Za-z0-9_]*", expr)
    if leftover:
        raise ValueError(f"{query.name}: unknown variables {sorted(set(leftover))}")
    return expr


def _duration_seconds(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if m is None:
        raise ValueError(f"not a simple duration: {text!r}")
    return int(m.group(1)) * units[m.group(2)]

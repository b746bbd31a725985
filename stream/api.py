"""HTTP API (contract section 6): live and final bonus figures, health and metrics."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from models.bonus import bonus_for
from models.months import Month
from models.rules import Rules, load_rules
from stream import metrics
from stream.errors import ApiError as ApiError  # noqa: PLC0414 (re-exported: its old home)
from stream.settings import Settings
from stream.store.store import MonthState, Store

_HOUSEHOLD_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_CARD = re.compile(r"^[0-9]{6,20}$")


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def bonus_body(household_id: str, month: Month, state: MonthState, rules: Rules) -> dict[str, Any]:
    """The figures of one household-month as they stand now (contract section 6)."""
    hh = state.household
    co_op = hh.co_op if hh else ""
    figures = bonus_for(state.accumulator, rules, co_op, business=bool(hh and hh.business))
    return {
        "household_id": household_id,
        "month": str(month),
        "co_op": co_op,
        "purchases_cents": figures.purchases_cents,
        "tier_bp": figures.tier_bp,
        "base_bonus_cents": figures.base_bonus_cents,
        "fuel_bonus_cents": figures.fuel_bonus_cents,
        "payment_benefit_cents": figures.payment_benefit_cents,
        "total_cents": figures.total_cents,
        "final": state.closed,
        "paid_cents": state.paid.total_cents,
        "swipes": state.accumulator.swipes,
    }


def create_api(
    settings: Settings, rules: Rules | None = None, store: Store | None = None
) -> FastAPI:
    rules = rules if rules is not None else load_rules(settings.rules)
    tokens = {t.strip() for t in settings.api_tokens.get_secret_value().split(",") if t.strip()}
    holder: dict[str, Store] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder["store"] = store or Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            yield
        finally:
            if store is None:
                await holder["store"].close()

    app = FastAPI(
        title="Loyalty bonus API",
        version="1",
        description="Live and final monthly Bonus figures per household (contract v1).",
        lifespan=lifespan,
        default_response_class=JSONBody,
    )

    def error(status: int, code: str, detail: str) -> JSONBody:
        return JSONBody({"error": code, "detail": detail}, status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return error(exc.status, exc.code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error(400, "invalid_request", f"{where}: {first.get('msg', 'invalid')}")

    @app.middleware("http")
    async def _observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", "unmatched")
        metrics.API_REQUESTS.labels(route=template, status=str(response.status_code)).observe(
            time.perf_counter() - started
        )
        return response

    def authorized(request: Request) -> None:
        if not tokens:
            return
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise ApiError(401, "unauthorized", "a bearer token is required")
        if header[7:].strip() not in tokens:
            raise ApiError(403, "forbidden", "the token is not accepted")

    def month_of(text: str | None) -> Month:
        if text is None:
            return Month.of(datetime.now(UTC), rules.timezone)
        try:
            return Month.parse(text)
        except ValueError:
            raise ApiError(
                400, "invalid_month", f"month must be YYYY-MM, got {text[:20]!r}"
            ) from None

    async def household_bonus(household_id: str, month: Month) -> dict[str, Any]:
        state = await holder["store"].month_state(household_id, str(month))
        if state.household is None and not state.accumulator.swipes:
            raise ApiError(404, "household_not_found", f"no household {household_id!r}")
        return bonus_body(household_id, month, state, rules)

    @app.get(
        "/v1/households/{household_id}/bonus",
        summary="A household's bonus for a month",
        dependencies=[Depends(authorized)],
    )
    async def get_household_bonus(household_id: str, month: str | None = None) -> JSONBody:
        if not _HOUSEHOLD_ID.match(household_id):
            raise ApiError(
                400, "invalid_household_id", "household id must be 1-64 of A-Z a-z 0-9 _ . -"
            )
        return JSONBody(await household_bonus(household_id, month_of(month)))

    @app.get(
        "/v1/cards/{card}/bonus",
        summary="The bonus of the card's household for a month",
        dependencies=[Depends(authorized)],
    )
    async def get_card_bonus(card: str, month: str | None = None) -> JSONBody:
        if not _CARD.match(card):
            raise ApiError(400, "invalid_card", "a card number is 6-20 digits")
        wanted = month_of(month)
        household_id = await holder["store"].card_household(card)
        if household_id is None:
            raise ApiError(404, "card_not_found", "no such card")  # never echo card numbers
        return JSONBody(await household_bonus(household_id, wanted))

    @app.get("/healthz", summary="Liveness and Redis reachability")
    async def healthz() -> JSONBody:
        try:
            ok = await holder["store"].ping()
        except Exception:
            ok = False
        return JSONBody(
            {"status": "ok" if ok else "degraded", "redis": ok}, status_code=200 if ok else 503
        )

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app

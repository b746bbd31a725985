"""HTTP API (contract sections 6 and 10): live and final bonus figures, health and metrics.

Every ``/v1`` route reads personal data, so each one declares its scope and is guarded by
``guard(scope, action)``: the bearer token names a client (401 otherwise, with
``WWW-Authenticate: Bearer``), the client's rate limit holds (429 with ``Retry-After``), the
client has the scope (403, audited as ``denied``). The route then records its ``audit/1``
record through the returned ``Access`` *before* it returns any data; when that record cannot
be written the caller gets 503 and nothing else. New routes that read personal data do the
same::

    @app.get("/v1/persons/{person_id}/data", responses=ERRORS)
    async def person_data(person_id: str, access: Access = SUBJECT_ACCESS):
        body = ...                                   # read it
        await access.record(household_id, "ok")     # then audit it, then return it
        return JSONBody(body)
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
import redis.exceptions
from fastapi import Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from models.bonus import bonus_for
from models.months import Month
from models.rules import Rules, load_rules
from stream import metrics
from stream.audit import AuditLog, AuditUnavailable
from stream.auth import BONUS_READ, SCOPES, SUBJECT_READ, Client, Clients, RateLimiter
from stream.bonus.insights import insights_body
from stream.bonus.subject import SubjectNotFound, analytics_reader, month_figures, subject_access
from stream.errors import ApiError as ApiError  # noqa: PLC0414 (re-exported: its old home)
from stream.errors import SettingsError
from stream.settings import Settings
from stream.store.store import MonthState, Store

__all__ = [
    "BONUS_ACCESS",
    "BONUS_READ",
    "ERRORS",
    "INSIGHTS_ACCESS",
    "SUBJECT_ACCESS",
    "SUBJECT_READ",
    "Access",
    "ApiError",
    "JSONBody",
    "create_api",
    "guard",
]

_HOUSEHOLD_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_CARD = re.compile(r"^[0-9]{6,20}$")


class JSONBody(JSONResponse):
    """JSON by orjson; a JSONResponse, so OpenAPI documents the route's model as its body."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class _ApiErrorWithHeaders(ApiError):
    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str]) -> None:
        super().__init__(status, code, detail)
        self.headers = headers


class NoCredentials(SettingsError):
    """No client and no token configured, and authentication not explicitly turned off."""


# -- documented bodies (OpenAPI) ----------------------------------------------------------


class ErrorBody(BaseModel):
    """Every error (contract section 6)."""

    error: str = Field(description="machine-readable code, e.g. household_not_found")
    detail: str = Field(description="one line for people")


class BonusFigures(BaseModel):
    """A household's Bonus for one month as it stands now (contract section 6)."""

    household_id: str
    month: str = Field(description="YYYY-MM")
    co_op: str
    purchases_cents: int
    tier_bp: int
    base_bonus_cents: int
    fuel_bonus_cents: int
    payment_benefit_cents: int
    total_cents: int
    final: bool = Field(description="the month has been closed")
    paid_cents: int = Field(description="sum of the payouts emitted for the month so far")
    swipes: int


class InsightMonth(BaseModel):
    """One month of member insights (contract section 13)."""

    month: str = Field(description="YYYY-MM")
    purchases_cents: int
    total_cents: int
    tier_bp: int
    to_next_tier_cents: int | None = Field(
        None, description="the running month only; absent at the top tier"
    )
    by_group: dict[str, int] | None = Field(
        None, description="eligible purchases by product group; absent with the ban"
    )


class Insights(BaseModel):
    """Member insights: per month, the purchases, the Bonus and the tier (section 13)."""

    household_id: str
    co_op: str
    months: list[InsightMonth]
    product_data: Literal["banned"] | None = Field(
        None, description="present when a person bans product_data_services"
    )


class SubjectAccess(BaseModel):
    """A subject-access/1 document (section 9; its parts: schemas/subject-access-1.schema.json).
    The contract fixes the kind and contents, not the field names inside the parts."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    schema_: Literal["subject-access/1"] = Field(alias="schema")
    subject: dict[str, str]


class Health(BaseModel):
    status: str = Field(description="ok or degraded")
    redis: bool


def _error_response(description: str, **headers: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"model": ErrorBody, "description": description}
    if headers:
        entry["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return entry


#: the error statuses of every guarded route; a route adds 400/404 as it has them
ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error_response(
        "no bearer token, or one that names no client",
        **{"WWW-Authenticate": "Bearer"},
    ),
    403: _error_response("the client lacks the route's scope"),
    429: _error_response(
        "the client's rate limit (LOYALTY_API_RATE_PER_SECOND) is used up",
        **{"Retry-After": "seconds to wait"},
    ),
    503: _error_response("Redis or the audit trail is unavailable; nothing was returned"),
}
BAD_INPUT = _error_response("a malformed id or month")


# -- access: authentication, rate limit, scope, audit -------------------------------------

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="a client's token (LOYALTY_API_CLIENTS) or a v1 token (LOYALTY_API_TOKENS). "
    "Scopes: " + "; ".join(f"{k}: {v}" for k, v in SCOPES.items()),
)
_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": 'Bearer realm="loyalty"'}
#: path parameters that name a subject, and how a subject reference is written for each
_SUBJECT_PARAMS = (("household_id", ""), ("person_id", "person:"), ("card", "card:"))


@dataclass(slots=True)
class Access:
    """The authenticated client of a request, and its audit record to write."""

    client: Client
    action: str
    audit: AuditLog
    recorded: bool = False

    async def record(self, subject: str | None, outcome: str, detail: str = "") -> None:
        """Append the audit record; raises ``AuditUnavailable`` (-> 503) if it cannot."""
        await self.audit.record(
            action=self.action,
            subject=subject,
            client=self.client.name,
            outcome=outcome,
            detail=detail,
        )
        self.recorded = True


async def _record_failure(request: Request) -> None:
    """A read that failed before its record (Redis down, a bug): outcome ``error`` in the
    trail, if the trail can be written (the caller gets the error either way)."""
    access = getattr(request.state, "access", None)
    if isinstance(access, Access) and not access.recorded:
        with contextlib.suppress(AuditUnavailable):
            await access.record(_subject_of(request), "error", "the read failed")


def _subject_of(request: Request) -> str | None:
    for name, prefix in _SUBJECT_PARAMS:
        value = request.path_params.get(name)
        if isinstance(value, str):
            return prefix + value
    return None


def guard(scope: str, action: str) -> Any:
    """The dependency of a route that reads personal data: ``access: Access = guard(...)``."""

    async def access(
        request: Request,
        security_scopes: SecurityScopes,
        credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),  # noqa: B008
    ) -> Access:
        state = request.app.state
        clients: Clients = state.clients
        if credentials is None and clients.enabled:
            metrics.API_REJECTED.labels(cause="unauthorized").inc()
            raise _ApiErrorWithHeaders(
                401, "unauthorized", "a bearer token is required", _UNAUTHORIZED_HEADERS
            )
        client = clients.authenticate(credentials.credentials if credentials else "")
        if client is None:
            metrics.API_REJECTED.labels(cause="unauthorized").inc()
            raise _ApiErrorWithHeaders(
                401, "unauthorized", "the token is not accepted", _UNAUTHORIZED_HEADERS
            )
        limiter: RateLimiter = state.limiter
        wait = limiter.acquire(client.name)
        if wait > 0:
            metrics.API_REJECTED.labels(cause="rate_limited").inc()
            raise _ApiErrorWithHeaders(
                429,
                "rate_limited",
                f"more than {limiter.rate:g} requests per second; retry later",
                {"Retry-After": RateLimiter.retry_after(wait)},
            )
        granted = Access(client, action, state.audit)
        request.state.access = granted  # for the error handlers (outcome "error")
        missing = [s for s in security_scopes.scopes if not client.allows(s)]
        if missing:
            metrics.API_REJECTED.labels(cause="forbidden").inc()
            await granted.record(_subject_of(request), "denied", f"missing scope {missing[0]}")
            raise ApiError(403, "forbidden", f"the client lacks the scope {missing[0]}")
        return granted

    access.__name__ = f"access_{action}"
    return Security(access, scopes=[scope])


# The guards of the routes (``access: Access = BONUS_ACCESS``), one per kind of access.
BONUS_ACCESS = guard(BONUS_READ, "bonus_read")
INSIGHTS_ACCESS = guard(BONUS_READ, "insights_read")
SUBJECT_ACCESS = guard(SUBJECT_READ, "subject_access")


def bonus_body(household_id: str, month: Month, state: MonthState, rules: Rules) -> dict[str, Any]:
    """The figures of one household-month as they stand now (contract section 6)."""
    hh = state.household
    co_op = hh.co_op if hh else ""
    figures = bonus_for(state.accumulator, rules, co_op, business=bool(hh and hh.business))
    return {"household_id": household_id, **month_figures(str(month), co_op, state, figures)}


def create_api(
    settings: Settings,
    rules: Rules | None = None,
    store: Store | None = None,
    *,
    clients: Clients | None = None,
    audit: AuditLog | None = None,
) -> FastAPI:
    """The API. ``clients`` defaults to those configured (``LOYALTY_API_CLIENTS``,
    ``LOYALTY_API_TOKENS``); with none, ``NoCredentials`` is raised unless
    ``Clients.disabled()`` is passed (``loyalty api --no-auth``)."""
    rules = rules if rules is not None else load_rules(settings.rules)
    if clients is None:
        clients = Clients.from_settings(settings)
        if not len(clients):
            raise NoCredentials(
                "no API client is configured: set LOYALTY_API_CLIENTS (see `loyalty clients "
                "add`) or LOYALTY_API_TOKENS, or start with --no-auth for a local demo"
            )
    holder: dict[str, Store] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder["store"] = store or Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            yield
        finally:
            if store is None:
                await holder["store"].close()
            if audit is None:
                await app.state.audit.close()

    app = FastAPI(
        title="Loyalty bonus API",
        version="1",
        description="Live and final monthly Bonus figures per household (contract v1).",
        lifespan=lifespan,
        default_response_class=JSONBody,
    )
    app.state.clients = clients
    app.state.limiter = RateLimiter(settings.api_rate_per_second)
    app.state.audit = audit if audit is not None else AuditLog.from_settings(settings)

    def error(
        status: int, code: str, detail: str, headers: dict[str, str] | None = None
    ) -> JSONBody:
        return JSONBody({"error": code, "detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> Response:
        return error(exc.status, exc.code, exc.detail, getattr(exc, "headers", None))

    @app.exception_handler(AuditUnavailable)
    async def _audit_unavailable(_: Request, exc: AuditUnavailable) -> Response:
        return error(503, "audit_unavailable", "the access cannot be recorded now; try again")

    @app.exception_handler(redis.exceptions.RedisError)
    async def _redis_error(request: Request, exc: redis.exceptions.RedisError) -> Response:
        await _record_failure(request)
        return error(503, "unavailable", "the data store is unavailable; try again")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        await _record_failure(request)
        return error(500, "internal_error", "an unexpected error; it has been logged")

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

    def month_of(text: str | None) -> Month:
        if text is None:
            return Month.of(datetime.now(UTC), rules.timezone)
        try:
            return Month.parse(text)
        except ValueError:
            raise ApiError(
                400, "invalid_month", f"month must be YYYY-MM, got {text[:20]!r}"
            ) from None

    async def household_bonus(
        household_id: str, month: Month, access: Access, detail: str
    ) -> dict[str, Any]:
        state = await holder["store"].month_state(household_id, str(month))
        # An erased household has no snapshot and no accumulators: the same answer, by the
        # same path (one Redis read, one audit record), as an id never seen.
        if state.household is None and not state.accumulator.swipes:
            await access.record(household_id, "not_found", detail)
            raise ApiError(404, "household_not_found", f"no household {household_id!r}")
        body = bonus_body(household_id, month, state, rules)
        await access.record(household_id, "ok", detail)
        return body

    month_query = Query(None, description="YYYY-MM (default: the running month)")

    @app.get(
        "/v1/households/{household_id}/bonus",
        summary="A household's bonus for a month",
        response_model=BonusFigures,
        responses={
            **ERRORS,
            400: BAD_INPUT,
            404: _error_response("no such household (or erased)"),
        },
    )
    async def get_household_bonus(
        household_id: str,
        month: str | None = month_query,
        access: Access = BONUS_ACCESS,
    ) -> JSONBody:
        if not _HOUSEHOLD_ID.match(household_id):
            raise ApiError(
                400, "invalid_household_id", "household id must be 1-64 of A-Z a-z 0-9 _ . -"
            )
        wanted = month_of(month)
        body = await household_bonus(household_id, wanted, access, f"household month={wanted}")
        return JSONBody(body)

    @app.get(
        "/v1/cards/{card}/bonus",
        summary="The bonus of the card's household for a month",
        response_model=BonusFigures,
        responses={
            **ERRORS,
            400: BAD_INPUT,
            404: _error_response("no such card (or its household was erased)"),
        },
    )
    async def get_card_bonus(
        card: str,
        month: str | None = month_query,
        access: Access = BONUS_ACCESS,
    ) -> JSONBody:
        if not _CARD.match(card):
            raise ApiError(400, "invalid_card", "a card number is 6-20 digits")
        wanted = month_of(month)
        detail = f"card month={wanted}"
        household_id = await holder["store"].card_household(card)
        if household_id is None:
            await access.record(f"card:{card}", "not_found", detail)
            raise ApiError(404, "card_not_found", "no such card")  # never echo card numbers
        return JSONBody(await household_bonus(household_id, wanted, access, detail))

    # -- register rights (contract sections 9 and 13) -------------------------------------

    def valid_id(value: str, what: str) -> str:
        if not _HOUSEHOLD_ID.match(value):
            raise ApiError(
                400, f"invalid_{what}_id", f"{what} id must be 1-64 of A-Z a-z 0-9 _ . -"
            )
        return value

    async def subject_document(
        access: Access, *, household_id: str | None = None, person_id: str | None = None
    ) -> JSONBody:
        subject = household_id or f"person:{person_id}"
        try:
            document = await subject_access(
                holder["store"],
                rules,
                household_id=household_id,
                person_id=person_id,
                analytics=analytics_reader(settings),
            )
        except SubjectNotFound:
            await access.record(subject, "not_found", "subject access")
            raise ApiError(404, "not_found", "nothing is held on that subject") from None
        await access.record(document["subject"].get("household_id") or subject, "ok", "data")
        return JSONBody(document)

    @app.get(
        "/v1/households/{household_id}/data",
        summary="Everything held on a household (right of access, subject-access/1)",
        response_model=SubjectAccess,
        responses={**ERRORS, 400: BAD_INPUT, 404: _error_response("nothing held (or erased)")},
    )
    async def get_household_data(household_id: str, access: Access = SUBJECT_ACCESS) -> JSONBody:
        return await subject_document(access, household_id=valid_id(household_id, "household"))

    @app.get(
        "/v1/persons/{person_id}/data",
        summary="Everything held on a person and their household (subject-access/1)",
        response_model=SubjectAccess,
        responses={**ERRORS, 400: BAD_INPUT, 404: _error_response("nothing held (or erased)")},
    )
    async def get_person_data(person_id: str, access: Access = SUBJECT_ACCESS) -> JSONBody:
        return await subject_document(access, person_id=valid_id(person_id, "person"))

    @app.get(
        "/v1/households/{household_id}/insights",
        summary="Member insights: months, tiers, distance to the next tier, product groups",
        response_model=Insights,
        responses={**ERRORS, 400: BAD_INPUT, 404: _error_response("no such household")},
    )
    async def get_insights(
        household_id: str,
        months: int = Query(12, ge=1, le=24, description="how many months, running one last"),
        access: Access = INSIGHTS_ACCESS,
    ) -> JSONBody:
        valid_id(household_id, "household")
        current = Month.of(datetime.now(UTC), rules.timezone)
        wanted = [current.minus(n) for n in range(months - 1, -1, -1)]
        body = await insights_body(
            holder["store"], rules, household_id, [str(m) for m in wanted], str(current)
        )
        if body is None:
            await access.record(household_id, "not_found", f"insights months={months}")
            raise ApiError(404, "household_not_found", f"no household {household_id!r}")
        await access.record(household_id, "ok", f"insights months={months}")
        return JSONBody(body)

    @app.get(
        "/healthz",
        summary="Liveness and Redis reachability",
        response_model=Health,
        responses={503: {"model": Health, "description": "Redis is unreachable"}},
    )
    async def healthz() -> JSONBody:
        try:
            ok = await holder["store"].ping()
        except Exception:
            ok = False
        return JSONBody(
            {"status": "ok" if ok else "degraded", "redis": ok}, status_code=200 if ok else 503
        )

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    def openapi() -> dict[str, Any]:
        # Invalid input is answered 400 with ErrorBody by our own handler: FastAPI's
        # generated 422 never happens, so it is not advertised.
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            for item in schema.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            for name in ("HTTPValidationError", "ValidationError"):
                schema.get("components", {}).get("schemas", {}).pop(name, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

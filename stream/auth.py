"""API clients and scopes (contract section 10): who may call the API, and for what.

Clients come from the TOML file named by ``LOYALTY_API_CLIENTS``; only the SHA-256 of each
bearer token is stored there, never the token. ``LOYALTY_API_TOKENS`` (contract v1) still
works: each such token is a client ``token-N`` with ``bonus:read`` only.

A presented token is hashed and compared with every stored digest by
``hmac.compare_digest``, always all of them, so the time taken does not depend on which
digest (or how much of one) matched.

``loyalty clients add NAME --scope ...`` (``add_client``) makes a random token, prints it
once and appends its digest to the file.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import SettingsError
from stream.settings import Settings

BONUS_READ = "bonus:read"
SUBJECT_READ = "subject:read"
SCOPES: dict[str, str] = {
    BONUS_READ: "a household's or card's Bonus figures and member insights (sections 6, 13)",
    SUBJECT_READ: "everything held on a household or person: right of access (section 9)",
}
#: the client name of every request when authentication is off (``loyalty api --no-auth``)
ANONYMOUS = "anonymous"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ClientsFileError(SettingsError):
    """The clients file (``LOYALTY_API_CLIENTS``) cannot be read or is invalid."""


@dataclass(frozen=True, slots=True)
class Client:
    """A named API client and the scopes it was granted."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    client: Client


class Clients:
    """The configured clients; ``authenticate(token)`` -> the client, or None."""

    def __init__(self, entries: Iterable[tuple[bytes, Client]], *, enabled: bool = True) -> None:
        self._entries = tuple(_Entry(d, c) for d, c in entries)
        self.enabled = enabled

    @classmethod
    def disabled(cls) -> Clients:
        """No authentication (``--no-auth``): every request is ``anonymous`` with every scope."""
        return cls((), enabled=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> Clients:
        """``LOYALTY_API_CLIENTS`` (if set) plus the v1 ``LOYALTY_API_TOKENS``."""
        entries: list[tuple[bytes, Client]] = []
        if settings.api_clients is not None:
            entries += load_clients_file(settings.api_clients)
        tokens = [t.strip() for t in settings.api_tokens.get_secret_value().split(",")]
        legacy = [t for t in tokens if t]
        entries += [
            (token_digest(t), Client(f"token-{n}", frozenset({BONUS_READ})))
            for n, t in enumerate(legacy, 1)
        ]
        return cls(entries)

    @property
    def names(self) -> list[str]:
        return [e.client.name for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def authenticate(self, token: str) -> Client | None:
        if not self.enabled:
            return Client(ANONYMOUS, frozenset(SCOPES))
        presented = token_digest(token)
        found: Client | None = None
        for entry in self._entries:  # every entry, whichever matches: no early exit
            if hmac.compare_digest(presented, entry.digest):
                found = entry.client
        return found


def load_clients_file(path: Path) -> list[tuple[bytes, Client]]:
    """The ``[[clients]]`` of a clients file as (digest, client); raises ``ClientsFileError``."""
    where = f"LOYALTY_API_CLIENTS={path}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ClientsFileError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientsFileError(f"{where}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ClientsFileError(f"{where}: not valid TOML ({exc})") from None
    raw = data.get("clients", [])
    if not isinstance(raw, list):
        raise ClientsFileError(f"{where}: 'clients' must be an array of tables ([[clients]])")
    entries: list[tuple[bytes, Client]] = []
    seen: set[str] = set()
    for n, item in enumerate(raw, 1):
        if not isinstance(item, dict):
            raise ClientsFileError(f"{where}: client #{n} is not a table")
        name = item.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ClientsFileError(
                f"{where}: client #{n}: name must be 1-64 of A-Z a-z 0-9 _ . -, got {name!r}"
            )
        if name in seen:
            raise ClientsFileError(f"{where}: client {name!r} is listed twice")
        seen.add(name)
        digest = item.get("token_sha256")
        if not isinstance(digest, str) or not _DIGEST.match(digest.lower()):
            raise ClientsFileError(
                f"{where}: client {name!r}: token_sha256 must be 64 hex digits "
                "(use `loyalty clients add` to make one)"
            )
        scopes = item.get("scopes")
        if not isinstance(scopes, list) or not scopes or not all(s in SCOPES for s in scopes):
            raise ClientsFileError(
                f"{where}: client {name!r}: scopes must be a non-empty list of "
                f"{', '.join(SCOPES)}, got {scopes!r}"
            )
        entries.append((bytes.fromhex(digest.lower()), Client(name, frozenset(scopes))))
    return entries


def add_client(path: Path, name: str, scopes: Iterable[str]) -> str:
    """Append a client with a new random token to ``path`` (made if missing, mode 0600).

    Returns the token: it is shown once and stored nowhere, only its digest is.
    """
    wanted = sorted(set(scopes))
    if not _NAME.match(name):
        raise ClientsFileError(f"client name must be 1-64 of A-Z a-z 0-9 _ . -, got {name!r}")
    unknown = [s for s in wanted if s not in SCOPES]
    if not wanted or unknown:
        raise ClientsFileError(
            f"--scope must be one or more of {', '.join(SCOPES)}, got {unknown or wanted!r}"
        )
    existing = load_clients_file(path) if path.exists() else []
    if any(c.name == name for _, c in existing):
        raise ClientsFileError(f"LOYALTY_API_CLIENTS={path}: a client {name!r} exists already")
    token = secrets.token_urlsafe(32)
    scope_list = ", ".join('"' + s + '"' for s in wanted)
    block = (
        "\n[[clients]]\n"
        f'name = "{name}"\n'
        f'token_sha256 = "{token_digest(token).hex()}"\n'
        f"scopes = [{scope_list}]\n"
        f"# added {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as out:
        out.write(block)
    load_clients_file(path)  # what we wrote reads back
    return token


# -- rate limits --------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    """A token bucket per client: ``rate`` requests per second, bursts of ``2 x rate``.

    In-process: each API replica limits on its own (N replicas allow N times the rate).
    """

    rate: float
    burst: float = 0.0
    clock: Callable[[], float] = field(default=time.monotonic)
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.burst <= 0:
            self.burst = 2 * self.rate

    def acquire(self, client: str) -> float:
        """Take one request for ``client``: 0.0 if allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    @staticmethod
    def retry_after(wait: float) -> str:
        """The ``Retry-After`` header (whole seconds, at least 1)."""
        return str(max(1, math.ceil(wait)))

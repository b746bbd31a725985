"""``loyalty clients add`` (API clients and scopes) and ``loyalty audit subject-key``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from stream.cli.support import Handler
from stream.settings import PLACEHOLDER_AUDIT_KEY, Settings


def add_commands(sub: Any) -> dict[str, Handler]:
    from stream.auth import SCOPES

    clients = sub.add_parser(
        "clients",
        help="API clients: add one (a new token, printed once)",
        description=(
            "Manage the API clients file (LOYALTY_API_CLIENTS). Only the SHA-256 of a token is "
            "stored; the token is printed once, when the client is added."
        ),
    )
    clients_sub = clients.add_subparsers(dest="clients_command", metavar="ACTION", required=True)
    add = clients_sub.add_parser(
        "add", help="add a client with a new random token", description="Add a client."
    )
    add.add_argument("name", metavar="NAME", help="the client's name (1-64 of A-Z a-z 0-9 _ . -)")
    add.add_argument(
        "--scope",
        action="append",
        required=True,
        choices=sorted(SCOPES),
        help="a scope to grant (repeat for several): "
        + "; ".join(f"{k}: {v}" for k, v in SCOPES.items()),
    )
    add.add_argument(
        "--file",
        type=Path,
        default=None,
        help="the clients file (default: LOYALTY_API_CLIENTS)",
    )
    audit = sub.add_parser(
        "audit",
        help="the audit trail: the subject key of a household",
        description="Audit records name a household only by a keyed hash (LOYALTY_AUDIT_KEY).",
    )
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    key = audit_sub.add_parser(
        "subject-key",
        help="print the subject_key of a household (to look it up in audit_log)",
        description="Print the subject_key that audit records carry for HOUSEHOLD.",
    )
    key.add_argument("--household", required=True, metavar="HOUSEHOLD")
    pseudonym = sub.add_parser(
        "pseudonym",
        help="the pseudonym key of the analytics: rotate it",
        description="Manage LOYALTY_PSEUDONYM_KEY, the key of household_key in ClickHouse.",
    )
    pseudonym_sub = pseudonym.add_subparsers(
        dest="pseudonym_command", metavar="ACTION", required=True
    )
    rotate = pseudonym_sub.add_parser(
        "rotate",
        help="re-key every household_key in ClickHouse under a new key (workers stopped)",
        description=(
            "Stop the workers, run this with the current key in LOYALTY_PSEUDONYM_KEY and the "
            "new one in --new-key-file, then start the workers with the new key. Segment "
            "membership and every total stay the same; a worker with the old key refuses to "
            "write afterwards."
        ),
    )
    rotate.add_argument("--new-key-file", type=Path, required=True, metavar="FILE")
    return {"clients": cmd_clients, "audit": cmd_audit, "pseudonym": cmd_pseudonym}


def cmd_clients(args: argparse.Namespace, settings: Settings) -> int:
    from stream.auth import ClientsFileError, add_client

    path = args.file or settings.api_clients
    if path is None:
        raise SystemExit("no clients file: set LOYALTY_API_CLIENTS or pass --file")
    try:
        token = add_client(Path(path), args.name, args.scope)
    except ClientsFileError as exc:
        raise SystemExit(str(exc)) from None
    print(f"added client {args.name!r} ({', '.join(sorted(set(args.scope)))}) to {path}")
    print("its bearer token (shown only now; give it to the client, store it nowhere else):")
    print(token)
    return 0


def cmd_audit(args: argparse.Namespace, settings: Settings) -> int:
    from stream.audit import subject_key

    secret = settings.audit_key.get_secret_value()
    if secret == PLACEHOLDER_AUDIT_KEY:
        print("warning: LOYALTY_AUDIT_KEY is the placeholder; set the deployment's key")
    print(subject_key(secret.encode("utf-8"), args.household))
    return 0


def cmd_pseudonym(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from stream.analytics.pseudonym import household_key
    from stream.analytics.rotation import mapping, rotate, unmapped_keys
    from stream.clickhouse.connect import connect
    from stream.clickhouse.migrate import migrate
    from stream.settings import PLACEHOLDER_PSEUDONYM_KEY
    from stream.store.store import Store

    try:
        new = args.new_key_file.read_text(encoding="utf-8").strip().encode()
    except OSError as exc:
        raise SystemExit(f"--new-key-file {args.new_key_file}: {exc.strerror}") from None
    old = settings.pseudonym_key.get_secret_value().encode()
    if len(new) < 16 or new == PLACEHOLDER_PSEUDONYM_KEY.encode():
        raise SystemExit(f"--new-key-file {args.new_key_file}: the new key must be a secret")
    if new == old:
        raise SystemExit("the new key is LOYALTY_PSEUDONYM_KEY already: nothing to rotate")

    async def household_ids() -> list[str]:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            first, second = await store.due_erasures(float("inf"))
            if first or second:
                raise SystemExit(
                    f"{len(first) + len(second)} erasure(s) still to run in ClickHouse: start "
                    "the worker until they are done, stop it, then rotate"
                )
            found: set[str] = set()
            async for batch in store.household_id_batches():
                found.update(batch)
            return sorted(found)
        finally:
            await store.close()

    async def store_new_keys(ids: list[str]) -> int:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        try:
            return await store.set_household_keys({h: household_key(new, h) for h in ids})
        finally:
            await store.close()

    ids = asyncio.run(household_ids())
    keys = mapping(ids, old, new)
    with connect(settings.clickhouse_url) as client:
        migrate(client)
        done = rotate(client, keys, new)
        left = unmapped_keys(client, list(keys.values()))
    # the households' own record of their key (the API reads lines by it) follows ClickHouse
    asyncio.run(store_new_keys(ids))
    print(f"re-keyed {done.households} household(s) in {done.chunks} step(s)")
    if left:
        print(f"warning: {left} household_key(s) in purchase_lines belong to no known household")
    print("now set LOYALTY_PSEUDONYM_KEY to the new key and start the workers")
    return 0

"""``loyalty subject-access``: the right of access (contract section 9) from the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

from models.errors import RulesError
from models.rules import load_rules
from stream.analytics.pseudonym import household_key
from stream.audit import AuditLog
from stream.bonus.subject import SubjectNotFound, clickhouse_part, subject_access
from stream.cli.support import Handler
from stream.clickhouse.connect import connect
from stream.errors import LoyaltyError, map_exceptions
from stream.settings import Settings
from stream.store.store import Store

AUDIT_CLIENT = "cli"


def cmd_subject_access(args: argparse.Namespace, settings: Settings) -> int:
    rules = load_rules(settings.rules)
    key = settings.pseudonym_key.get_secret_value().encode()

    async def run() -> dict[str, Any] | None:
        store = Store.from_url(settings.redis_url, settings.redis_prefix)
        audit = AuditLog.from_settings(settings)
        try:
            with connect(settings.clickhouse_url) as client:

                async def analytics(household_id: str, _stored_key: str | None) -> Any:
                    return await asyncio.to_thread(
                        clickhouse_part, client, household_key(key, household_id)
                    )

                return await answer(store, audit, analytics)
        finally:
            await store.close()
            await audit.close()

    async def answer(store: Store, audit: AuditLog, analytics: Any) -> dict[str, Any] | None:
        subject = args.household or f"person:{args.person}"
        try:
            document = await subject_access(
                store,
                rules,
                household_id=args.household,
                person_id=args.person,
                analytics=analytics,
            )
        except SubjectNotFound:
            await audit.record(
                action="subject_access",
                subject=subject,
                client=AUDIT_CLIENT,
                outcome="not_found",
                detail="subject-access command",
            )
            return None
        await audit.record(
            action="subject_access",
            subject=document["subject"].get("household_id") or subject,
            client=AUDIT_CLIENT,
            outcome="ok",
            detail="subject-access command",
        )
        return document

    try:
        with map_exceptions(settings):
            document = asyncio.run(run())
    except (LoyaltyError, RulesError) as exc:
        if getattr(args, "debug", False):
            raise
        sys.stderr.write(f"error: {exc}\n")
        return 1
    if document is None:
        sys.stderr.write("error: nothing is held on that subject (unknown or erased)\n")
        return 1
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if args.out:
        Path(args.out).write_bytes(body)
        sys.stderr.write(f"wrote {args.out} ({len(body)} bytes)\n")
    else:
        sys.stdout.write(body.decode())
    return 0


def add_commands(sub: Any) -> dict[str, Handler]:
    parser = sub.add_parser(
        "subject-access",
        help="everything held on a household or a person, as one JSON document",
        description=(
            "The right of access: one subject-access/1 document with the register snapshots, "
            "bans and permissions, capital, every month held with its figures, payouts, held "
            "swipes, purchase lines and segment memberships. For a person: their own records "
            "and their household's. With the embedded ClickHouse (chdb), stop the worker first."
        ),
    )
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--household", metavar="H", help="a household id")
    who.add_argument("--person", metavar="P", help="a person id")
    parser.add_argument("--out", metavar="FILE", help="write the document here (default stdout)")
    return {"subject-access": cmd_subject_access}

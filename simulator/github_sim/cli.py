"""``github-sim``: run the GitHub simulator as a standalone server.

Owns the command line (arguments to a :class:`SimulatorConfig` and fault knobs) and the ready
line scripts wait for; it must not add behaviour a :class:`Simulator` used from Python lacks.

Example::

    github-sim --port 8765 --repos 180 --seed 1 --owner acme --latency-ms 100
    github-sim --app-id 1234 --app-public-key-file app.pub.pem --app-installation-id 5678 \
        --token-user ghp_a=alice --token-user ghp_b=alice --token-user ghp_c=bob
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path

from github_sim.app import Simulator
from github_sim.config import INSTALLATION_TOKEN_LIFETIME_S, AppConfig, InstallationConfig, SimulatorConfig

log = logging.getLogger("github_sim")

DEFAULT_PORT = 8765
DEFAULT_APP_SLUG = "github-sync"
DEFAULT_INSTALLATION_ID = 1


def _token_user(value: str) -> tuple[str, str]:
    token, sep, login = value.partition("=")
    if not sep or not token or not login:
        raise argparse.ArgumentTypeError(f"expected TOKEN=LOGIN, not {value!r}")
    return token, login


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``github-sim``."""
    p = argparse.ArgumentParser(prog="github-sim", description="Local GitHub REST API simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0 picks a free port (logged at startup)")
    p.add_argument("--owner", default="acme")
    p.add_argument("--owner-type", default="Organization", choices=("Organization", "User"))
    p.add_argument("--repos", type=int, default=180)
    p.add_argument(
        "--small-repos",
        action="store_true",
        help="make every repository small (no big, medium, empty or archived ones): scale benchmarks",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--rate-limit", type=int, default=5000)
    p.add_argument("--reset-interval-s", type=int, default=3600)
    p.add_argument(
        "--token", action="append", dest="tokens", help="accepted token (repeatable; default: any)"
    )
    p.add_argument(
        "--owner-token",
        action="append",
        dest="owner_tokens",
        help="token of the owner account itself (repeatable; --owner-type User only; "
        "default: every token is the owner's)",
    )
    p.add_argument(
        "--outsider-token",
        action="append",
        dest="outsider_tokens",
        default=[],
        help="token of an account without access to private repositories (repeatable)",
    )
    p.add_argument(
        "--private-repos", type=int, default=None, help="number of private repositories (default: seeded)"
    )
    p.add_argument(
        "--token-user",
        action="append",
        dest="token_users",
        type=_token_user,
        default=[],
        metavar="TOKEN=LOGIN",
        help="token of user LOGIN; tokens of one login share one rate-limit budget (repeatable)",
    )
    app = p.add_argument_group("GitHub App", "one App installed on the owner (enabled by --app-id)")
    app.add_argument("--app-id", type=int, default=None, help="id of the App (JWT `iss`)")
    app.add_argument("--app-public-key-file", type=Path, default=None, help="PEM of the App's RSA public key")
    app.add_argument("--app-slug", default=DEFAULT_APP_SLUG)
    app.add_argument("--app-client-id", default="", help="client ID (default Iv1. and the app id in hex)")
    app.add_argument("--app-installation-id", type=int, default=DEFAULT_INSTALLATION_ID)
    app.add_argument(
        "--app-token-lifetime",
        type=int,
        default=INSTALLATION_TOKEN_LIFETIME_S,
        metavar="SECONDS",
        help="lifetime of installation access tokens",
    )
    p.add_argument("--max-page-size-before-502", type=int, default=None)
    p.add_argument("--random-5xx-rate", type=float, default=0.0)
    p.add_argument("--secondary-limit-concurrency", type=int, default=None)
    p.add_argument("--secondary-limit-burst", type=int, default=None)
    p.add_argument("--secondary-retry-after", type=int, default=60, help="negative: send no retry-after")
    p.add_argument("--slow-ms", type=int, default=0)
    p.add_argument("--reset-connection-rate", type=float, default=0.0)
    p.add_argument("--status-429-for-primary", action="store_true")
    p.add_argument("--log-level", default="INFO")
    return p


def apps_from_args(args: argparse.Namespace) -> list[AppConfig]:
    """The App ``--app-*`` describes (installed on ``--owner``), or none without ``--app-id``."""
    if args.app_id is None:
        return []
    if args.app_public_key_file is None:
        raise SystemExit("github-sim: --app-id needs --app-public-key-file")
    return [
        AppConfig(
            app_id=args.app_id,
            slug=args.app_slug,
            public_key_pem=args.app_public_key_file.read_text(),
            client_id=args.app_client_id,
            installations=[InstallationConfig(installation_id=args.app_installation_id, account=args.owner)],
            token_lifetime_s=args.app_token_lifetime,
        )
    ]


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """Return the :class:`SimulatorConfig` that parsed ``github-sim`` arguments describe."""
    return SimulatorConfig(
        owner=args.owner,
        owner_type=args.owner_type,
        repos=args.repos,
        seed=args.seed,
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        reset_interval_s=args.reset_interval_s,
        tokens=args.tokens,
        host=args.host,
        port=args.port,
        owner_tokens=args.owner_tokens,
        outsider_tokens=args.outsider_tokens,
        private_repos=args.private_repos,
        apps=apps_from_args(args),
        token_users=dict(args.token_users),
        repo_mix="small" if args.small_repos else "default",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM; returns the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    sim = Simulator(config_from_args(args))
    sim.faults.update(
        {
            "max_page_size_before_502": args.max_page_size_before_502,
            "random_5xx_rate": args.random_5xx_rate,
            "secondary_limit_concurrency": args.secondary_limit_concurrency,
            "secondary_limit_burst": args.secondary_limit_burst,
            "secondary_retry_after": args.secondary_retry_after if args.secondary_retry_after >= 0 else None,
            "slow_ms": args.slow_ms,
            "reset_connection_rate": args.reset_connection_rate,
            "status_429_for_primary": args.status_429_for_primary,
        }
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sim.start()
    # The one line scripts wait for: it carries the chosen port when --port 0.
    log.info("github-sim ready url=%s owner=%s repos=%d seed=%d", sim.url, args.owner, args.repos, args.seed)
    stop.wait()
    sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

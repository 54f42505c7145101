"""Serving the app with uvicorn: loopback by default, a warning for any other address."""

import ipaddress
import socket
from collections.abc import Callable

import uvicorn

from evolve.ui.app import create_app

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """What binding host exposes, or None for a loopback address."""
    if is_loopback(host):
        return None
    return (
        f"binding {host}: anyone who can reach this machine on that address can read the whole lineage database "
        "(every program, prompt and reply). There is no login. Use the default --host 127.0.0.1 and an SSH tunnel "
        "(ssh -L 8765:127.0.0.1:8765 HOST) unless that is what you want."
    )


def allowed_hosts(host: str) -> list[str]:
    """Host headers to accept: the loopback names, and the bound address with this machine's names when not loopback."""
    hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
    if not is_loopback(host):
        hosts = ["*"] if host in ("0.0.0.0", "::") else hosts + [host, socket.gethostname(), socket.getfqdn()]
    return hosts


def serve(db_url: str, host: str, port: int, say: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """Open the database read-only (failing now on a bad URL) and serve until interrupted."""
    app = create_app(db_url, allowed_hosts(host))
    warning = exposure_warning(host)
    if warning:
        warn(warning)
    shown = f"[{host}]" if ":" in host else host
    say(f"evolve ui: http://{shown}:{port}/ over the {app.state.store.db.describe()} (read-only); Ctrl-C stops it")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)

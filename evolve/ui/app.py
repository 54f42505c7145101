"""The web app: three pages and two JSON endpoints over a read-only Store.

Only GET (and HEAD) routes exist. Responses carry a Content-Security-Policy that allows scripts
from this server's /static only, so even a string that escaped escaping could not run; the Host
header must name this machine, which defeats DNS-rebinding pages reading the database.
"""

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from evolve.database.errors import DatabaseError
from evolve.database.store import NotFound
from evolve.ui import queries, render

STATIC = Path(__file__).parent / "static"
POLL_MILLISECONDS = 3000
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class SecurityHeaders:
    """Adds the CSP and friends to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cache-control", b"no-store"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def scoped(query: str) -> dict[str, int]:
    """experiment=ID&candidate=ID (either optional) as fingerprint arguments; anything else is ignored."""
    scope = {}
    for key, _, value in (part.partition("=") for part in query.split("&")):
        if key in ("experiment", "candidate") and value.isdigit():
            scope[f"{key}_id"] = int(value)
    return scope


def create_app(db_url: str, allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "::1", "[::1]")) -> Starlette:
    """The app over the database at db_url, opened read-only now (so that a bad URL fails at once)."""
    store = queries.open_read_only(db_url)

    def html(template: str, scope: str = "", status_code: int = 200, **context) -> HTMLResponse:
        """A page, with the fingerprint of what it shows and where to poll it (the query string `scope`)."""
        version = queries.fingerprint(store, **scoped(scope))
        body = render.page(template, version=version, scope=scope, poll_ms=POLL_MILLISECONDS, db=store.db.describe(), **context)
        return HTMLResponse(body, status_code=status_code)

    def experiments_page(request: Request) -> Response:
        return html("experiments.html", rows=queries.experiments(store))

    def experiment_page(request: Request) -> Response:
        experiment = store.experiment(request.path_params["name"])
        rows = [r for r in queries.experiments(store) if r.overview.experiment.id == experiment.id]
        return html("experiment.html", f"experiment={experiment.id}", row=rows[0], experiment=experiment)

    def candidate_page(request: Request) -> Response:
        page = queries.candidate_page(store, request.path_params["candidate_id"], db_url)
        candidate = page.detail.candidate
        return html("candidate.html", f"experiment={candidate.experiment_id}&candidate={candidate.id}", page=page, c=candidate)

    def diff_fragment(request: Request) -> Response:
        candidate = store.candidate(request.path_params["candidate_id"])
        return HTMLResponse(render.page("diff_fragment.html", c=candidate))

    def experiment_data(request: Request) -> Response:
        experiment = store.experiment(request.path_params["name"])
        data = queries.experiment_data(store, experiment.id)
        return Response(json.dumps(data, separators=(",", ":"), allow_nan=False), media_type="application/json")

    def version(request: Request) -> Response:
        return JSONResponse({"version": queries.fingerprint(store, **scoped(str(request.query_params)))})

    def highlight_css(request: Request) -> Response:
        return Response(render.highlight_css(), media_type="text/css")

    async def not_found(request: Request, error: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(error)}, status_code=404)
        return html("error.html", status_code=404, message=str(error))

    async def database_error(request: Request, error: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": str(error)}, status_code=503)
        return HTMLResponse(render.page("error.html", version="", scope="", poll_ms=POLL_MILLISECONDS, db=store.db.describe(),
                                        message=str(error)), status_code=503)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        store.close()

    routes = [
        Route("/", experiments_page),
        Route("/experiments/{name}", experiment_page),
        Route("/candidates/{candidate_id:int}", candidate_page),
        Route("/candidates/{candidate_id:int}/diff", diff_fragment),
        Route("/api/experiments/{name}", experiment_data),
        Route("/api/version", version),
        Route("/highlight.css", highlight_css),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))],
        exception_handlers={NotFound: not_found, DatabaseError: database_error},
        lifespan=lifespan,
    )
    app.state.store = store
    return app


"""The FastAPI application: routers, the snapshot to answer from (`snapshot_for`, over the store
the app is given), the API key, and errors as JSON.

`create_app(settings, store)` builds it; tests hand it a store over their own bucket. Every
error is a `Problem` (what was wrong, what to do), never a stack trace: validation errors are
422, an unknown path 404, a too large body 413. Anything unexpected is a bug: it is logged with
an incident id and answered 500 with that id and no stack trace (the fuzz test looks for them).
"""
from __future__ import annotations

import datetime as dt
import hmac
import logging
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.settings import Settings
from api.store import Snapshot, SnapshotStore

log = logging.getLogger("api")

STATIC_DIR = Path(__file__).parent / "static"
MAX_BODY_BYTES = 256 * 1024  # 1,000 addresses of ≤ 100 characters, with room to spare
API_VERSION = "1.0.0"
AS_OF = r"^\d{4}-\d{2}-\d{2}$"


class ApiError(Exception):
    """An answer that is not a success, turned into a Problem body by the handler."""

    def __init__(self, status: int, error: str, detail: str, kind: str | None = None,
                 what_to_do: str | None = None, headers: dict | None = None):
        super().__init__(detail)
        self.status, self.error, self.detail, self.kind, self.what_to_do = status, error, detail, kind, what_to_do
        self.headers = headers

    def body(self) -> dict:
        return {"error": self.error, "detail": self.detail, "kind": self.kind, "what_to_do": self.what_to_do}


def _problem(status: int, error: str, detail: str, what_to_do: str | None = None, kind: str | None = None,
             headers: dict | None = None) -> ORJSONResponse:
    return ORJSONResponse({"error": error, "detail": detail, "kind": kind, "what_to_do": what_to_do},
                          status_code=status, headers=headers)


# ---------------------------------------------------------------- dependencies


def key_problem(settings: Settings, headers: list[tuple[bytes, bytes]]) -> ApiError | None:
    """The API key check, on when the settings hold a key (the gcp deployment): None when the
    request may pass, else the 401 (no key) or 403 (a wrong one) to answer."""
    expected = settings.api_key
    if not expected:
        return None
    given = None
    for name, value in headers:
        if name == b"x-api-key":
            given = value
        elif name == b"authorization" and given is None and value[:7].lower() == b"bearer ":
            given = value[7:].strip()
    if not given:
        return ApiError(401, "unauthorized", "this API needs a key: send it in the X-API-Key header",
                        what_to_do="ask the service's owner for a key", headers={"WWW-Authenticate": "ApiKey"})
    if not hmac.compare_digest(given, expected.encode("utf-8")):
        return ApiError(403, "forbidden", "the API key sent is not valid",
                        what_to_do="check the key, or ask for a new one")
    return None


async def snapshot_for(request: Request,
                       as_of: str | None = Query(None, pattern=AS_OF,
                                                 description="Answer as of this UTC day (YYYY-MM-DD)")) -> Snapshot:
    """The snapshot that answers: the one in force, or the newest published on or before `as_of`."""
    store: SnapshotStore = request.app.state.store
    current = store.current
    if current is None:
        raise ApiError(503, "not_ready", store.last_error or "no serving snapshot is loaded yet",
                       what_to_do="publish one: python -m pool_classifier.steps.publish_serving --ds <day>")
    if as_of is None:
        return current
    try:
        dt.date.fromisoformat(as_of)
    except ValueError:
        raise ApiError(422, "bad_date", f"as_of={as_of!r} is not a calendar day",
                       what_to_do="give a UTC day as YYYY-MM-DD") from None
    found = store.for_day(as_of)
    if found is None:
        raise ApiError(404, "no_data_yet", f"no data as of {as_of}: the data runs since {current.meta['first_day']}",
                       what_to_do=f"ask for a day from {current.meta['first_day']} to {current.day}")
    return found


def lineage(snap: Snapshot) -> dict:
    meta = snap.meta
    return {"snapshot_day": snap.day, "snapshot_version": snap.version, "data_since": meta["first_day"],
            "pools_sha256": meta["pools_sha256"], "watermark": meta["watermark"]}


# ---------------------------------------------------------------- the app


def _document_the_key(app: FastAPI) -> None:
    """The API key in the OpenAPI schema (checked by Guard, not by a dependency: a dependency costs
    a lookup ~15 % of its time in FastAPI's dependency solving)."""
    from fastapi.openapi.utils import get_openapi

    def openapi():
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {})["securitySchemes"] = {"ApiKey": {
                "type": "apiKey", "in": "header", "name": "X-API-Key",
                "description": "Required when the deployment sets POOL_API_KEY (the gcp target)"}}
            for path, operations in spec["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"ApiKey": []}]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi


class Guard:
    """Outermost of the app's own layers (pure ASGI: no per-request task, unlike @app.middleware):
    checks the API key of /v1/ requests (401, 403), refuses a declared body over MAX_BODY_BYTES
    (413), and answers an unexpected exception with a Problem and an incident id in the log,
    never a stack trace."""

    def __init__(self, app, settings: Settings):
        self.app = app
        self.settings = settings

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"].startswith("/v1/"):  # the data; health, pages and /docs stay open
            problem = key_problem(self.settings, scope["headers"])
            if problem is not None:
                return await ORJSONResponse(problem.body(), status_code=problem.status, headers=problem.headers)(
                    scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    return await _problem(400, "bad_request", "the Content-Length header is not a number")(
                        scope, receive, send)
                if int(value) > MAX_BODY_BYTES:
                    return await _problem(413, "too_large", f"the body is {int(value):,} bytes; at most "
                                          f"{MAX_BODY_BYTES:,}", "send at most 1,000 addresses per lookup")(
                        scope, receive, send)
        started = False

        async def watched(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:  # a bug: logged with an id, answered without a stack trace
            incident = uuid.uuid4().hex[:12]
            log.exception("request %s %s failed (incident %s)", scope.get("method"), scope.get("path"), incident)
            if started:
                raise
            await _problem(500, "internal", f"the request failed unexpectedly (incident {incident})",
                           "retry; if it persists, report the incident id")(scope, receive, send)


def create_app(settings: Settings, store: SnapshotStore | None = None, activity=None) -> FastAPI:
    """The app over `store` (default: the snapshots of `settings.bucket`, polled) and the hourly
    activity of the same bucket (`activity`, an `api.activity.ActivityReader`: the same file system)."""
    from api.activity import ActivityReader

    store = store or SnapshotStore(settings.bucket, poll_seconds=settings.poll_seconds, cache_dir=settings.cache_dir)
    activity = activity or ActivityReader(settings.bucket, fs=store.fs, poll_seconds=settings.poll_seconds)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store.start()
        try:
            yield
        finally:
            store.stop()

    app = FastAPI(
        title="Mining-pool address classifier",
        version=API_VERSION,
        description="Scores of Bitcoin addresses (is it a mining pool's?), the pools, the candidates no label "
                    "explains and the model, from the daily serving snapshot. Every answer names its "
                    "snapshot day, model version and lineage.",
        default_response_class=ORJSONResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.activity = activity

    app.add_middleware(Guard, settings=settings)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return ORJSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()))
            problems.append(f"{where}: {e.get('msg')}")
        return _problem(422, "invalid_request", "; ".join(problems) or "the request is not valid",
                        "see /docs for the expected parameters and body")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        names = {404: "not_found", 405: "method_not_allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        hint = "see /docs for the API's paths" if exc.status_code in (404, 405) else None
        return _problem(exc.status_code, names.get(exc.status_code, "http_error"), detail, hint,
                        headers=getattr(exc, "headers", None))

    @app.exception_handler(HTTPException)
    async def fastapi_http_error(request: Request, exc: HTTPException):
        return await http_error(request, exc)

    from api.routers import activity as activity_routes
    from api.routers import addresses, health, model, pages, pools

    app.include_router(health.router)
    app.include_router(addresses.router)
    app.include_router(activity_routes.router)  # before /v1/pools/{pool_id}
    app.include_router(pools.router)
    app.include_router(model.router)
    _document_the_key(app)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app

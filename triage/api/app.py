"""Application factory: routers, error formats, request-size limit, security headers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from triage.api import open311, review, review_web, search, v1, web
from triage.api.common import forget_totals
from triage.config import get_settings
from triage.lifecycle import LifecycleError


class ForgetTotalsOnWrite:
    """Queue totals are cached briefly per process (api.common); a change made through this
    process drops them at once, so a clerk sees the new count after their own action."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http" and scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
                forget_totals()


class BodyLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    return await _too_large(scope, send, self.max_bytes)
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge
            return msg

        async def tracking_send(msg: Message) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            await self.app(scope, limited, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(scope, send, self.max_bytes)


_COMMON_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
_WEB_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'self'; style-src 'self' 'unsafe-inline'"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Plain ASGI (BaseHTTPMiddleware costs about a millisecond per request on the hot path)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        extra = _COMMON_HEADERS + (_WEB_HEADERS if scope["path"].startswith("/web") else [])

        async def send_with_headers(msg: Message) -> None:
            if msg["type"] == "http.response.start":
                present = {k.lower() for k, _ in msg.get("headers", [])}
                msg["headers"] = list(msg.get("headers", [])) + [(k, v) for k, v in extra if k not in present]
            await send(msg)

        await self.app(scope, receive, send_with_headers)


class _BodyTooLarge(Exception):
    pass


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    resp = JSONResponse({"detail": f"request body larger than {limit} bytes"}, status_code=413)
    await resp(scope, _noop_receive, send)


async def _noop_receive() -> Message:
    return {"type": "http.disconnect"}


def _is_open311(request: Request) -> bool:
    return request.url.path.startswith("/open311/")


def _fmt(request: Request) -> str:
    return "xml" if request.url.path.endswith(".xml") else "json"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    import anyio.to_thread

    # Sync endpoints run in this many threads per worker; keeping it at the connection pool's size
    # means requests queue in the server instead of opening database connections past the pool.
    anyio.to_thread.current_default_thread_limiter().total_tokens = get_settings().api_threads
    yield


def create_app() -> FastAPI:
    settings = get_settings()
    settings.require_production_secrets()  # refuse to start rather than hash callers with a public key
    app = FastAPI(
        lifespan=_lifespan,
        title="接诉即办 street-office API",
        version="1.0",
        description=(
            "Street offices work their own queue; analysts read all and correct categories; "
            "Open311 GeoReport v2 under /open311/v2/. Authenticate with `Authorization: Bearer <token>` "
            "(tokens from `triage token create`). Phone and ID numbers are always masked."
        ),
    )
    app.include_router(review.router)
    app.include_router(v1.router)
    app.include_router(open311.router)
    app.include_router(review_web.router)
    app.include_router(web.router)
    app.include_router(search.router)

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.exception_handler(LifecycleError)
    async def lifecycle_error(request: Request, exc: LifecycleError) -> Response:
        # a street must not learn that another street's item exists: 403s are reported as 404 there
        if _is_open311(request):
            return open311.error_response(exc.status_code, str(exc), _fmt(request))
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)

    @app.exception_handler(open311.Open311Error)
    async def open311_error(request: Request, exc: open311.Open311Error) -> Response:
        return open311.error_response(exc.code, exc.description, exc.fmt)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if _is_open311(request):
            return open311.error_response(exc.status_code, str(exc.detail), _fmt(request))
        if request.url.path.startswith("/web/") and exc.status_code == 401:
            return web.redirect_to_login()
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if _is_open311(request):
            first: Any = exc.errors()[0] if exc.errors() else {}
            where = ".".join(str(x) for x in first.get("loc", []))
            return open311.error_response(400, f"{where}: {first.get('msg', 'invalid')}", _fmt(request))
        errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(SecurityHeaders)
    app.add_middleware(ForgetTotalsOnWrite)
    app.add_middleware(BodyLimit, max_bytes=settings.api_max_body_bytes)
    return app


def asgi_app() -> Any:
    """Entry point for `uvicorn --factory triage.api.app:asgi_app` (each worker builds its own)."""
    return create_app()

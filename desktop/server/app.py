"""The FastAPI application: OpenAI-compatible routes over the library's packs.

Cross-cutting rules live here: API-key check in constant time, a hard cap on request
bodies (413 before a byte is parsed), CORS only for listed origins, and every error in
OpenAI's JSON shape with the status a client library understands. Model names are
looked up among the library's packs only; a client never names a path.
"""

from __future__ import annotations

import hmac
import json
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from desktop.engines.errors import AtelierError
from desktop.engines.packs.library import Library
from desktop.engines.packs.pack import load_pack

from .config import ServerConfig
from .errors import ApiError, status_of
from .jobs import JobRunner
from .pool import ModelPool
from .request_log import RequestLog, RequestLogMiddleware


def error_response(status: int, message: str, kind: str, code: str | None = None, param: str | None = None, headers=None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class Catalog:
    """The packs a client may name: the library's valid packs, by name."""

    def __init__(self, library: Library):
        self.library = library

    def entries(self):
        return [e for e in self.library.entries() if e.manifest]

    def entry(self, name: str, modality: str | None = None):
        for e in self.entries():
            if e.name == name:
                if modality and e.manifest.get("modality") != modality:
                    raise ApiError(400, f"'{name}' is a {e.manifest.get('modality')} model; this endpoint needs a {modality} model.", code="model_not_supported", param="model")
                return e
        raise ApiError(404, f"The model '{name}' does not exist in this library. GET /v1/models lists the installed ones.", code="model_not_found", param="model")

    def load(self, name: str):
        return load_pack(self.entry(name).root)


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes, declared or streamed (413)."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await _too_large(self.limit, send)
        seen, too_large = 0, False

        async def counted():
            # Past the limit the app is told the client left, its reply is dropped, and the
            # 413 is sent here: raising would reach FastAPI's body parser as a generic 400.
            nonlocal seen, too_large
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not too_large:
                await send(message)

        try:
            await self.app(scope, counted, guarded_send)
        finally:
            if too_large:
                await _too_large(self.limit, send)


async def _too_large(limit: int, send) -> None:
    body = json.dumps({"error": {"message": f"The request body is larger than the {limit:,}-byte limit.", "type": "invalid_request_error", "param": None, "code": "request_too_large"}}).encode()
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def create_app(config: ServerConfig, library: Library | None = None, jobs=None) -> FastAPI:
    """The app over ``library``. ``jobs`` runs engine work (``async events(model, make)``):
    by default a :class:`JobRunner` over an in-process :class:`ModelPool`; Ray Serve passes
    one that sends each job to the replica holding that model (desktop/server/ray_app.py)."""
    from . import routes_media, routes_text

    config.validate()
    catalog = Catalog(library or Library())
    pool = executor = None
    if jobs is None:
        executor = ThreadPoolExecutor(max_workers=max(config.workers, config.text_streams + 2), thread_name_prefix="atelier-engine")
        pool = ModelPool(catalog, config.budget(), max_queue=config.max_queue, text_streams=config.text_streams)
        jobs = JobRunner(pool, executor)

    @asynccontextmanager
    async def lifespan(app):
        yield
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
            pool.close()

    app = FastAPI(title="Atelier local API", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.config, app.state.catalog, app.state.pool, app.state.jobs = config, catalog, pool, jobs

    @app.middleware("http")
    async def authenticate(request: Request, call_next):
        if config.api_key:
            given = request.headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            ok = scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), config.api_key.encode())
            if not ok:
                return error_response(401, "Missing or wrong API key (send 'Authorization: Bearer KEY').", "invalid_request_error", "invalid_api_key")
        return await call_next(request)

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins), allow_methods=["GET", "POST"], allow_headers=["authorization", "content-type"])
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.state.request_log = RequestLog()
    app.add_middleware(RequestLogMiddleware, request_log=app.state.request_log)  # added last: outermost, sees 401/413 too

    @app.exception_handler(ApiError)
    async def _api_error(request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.kind, exc.code, exc.param)

    @app.exception_handler(AtelierError)
    async def _atelier_error(request, exc: AtelierError):
        status, kind, code = status_of(exc)
        headers = {"Retry-After": "2"} if status in (429, 503) else None
        return error_response(status, str(exc), kind, code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return error_response(400, f"{where or 'body'}: {first.get('msg', 'invalid request')}", "invalid_request_error", param=where or None)

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [_model_card(e) for e in catalog.entries()]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str):
        return _model_card(catalog.entry(name))

    routes_text.register(app)
    routes_media.register(app)

    return app


def _model_card(entry) -> dict:
    m = entry.manifest
    try:
        created = int(entry.root.joinpath("manifest.json").stat().st_mtime)
    except OSError:
        created = int(time.time())
    return {
        "id": entry.name,
        "object": "model",
        "created": created,
        "owned_by": "atelier",
        "modality": m.get("modality"),
        "precision": m.get("precision"),
        "context_length": m.get("context_length"),
        "architecture": m.get("architecture"),
    }

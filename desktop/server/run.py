"""Run the API server with uvicorn on a socket we bind ourselves.

Binding here (not in uvicorn) lets the offline network guard allow exactly this one
listening socket and the connections it accepts, lets tests ask for port 0 and read the
port back, and lets the start-up security checks run before anything listens.
"""

from __future__ import annotations

import logging
import threading

from .config import ServerConfig

log = logging.getLogger(__name__)


def bind(config: ServerConfig):
    from desktop.offline import listening_socket

    try:
        return listening_socket(config.host, config.port)
    except OSError as exc:
        from desktop.engines.errors import RequestError

        raise RequestError(f"Cannot listen on {config.host}:{config.port}: {exc.strerror or exc}.") from None


class ApiServer:
    """uvicorn serving :func:`desktop.server.app.create_app` on a pre-bound socket."""

    def __init__(self, config: ServerConfig, library=None):
        import uvicorn

        from .app import create_app

        self.config = config
        self.app = create_app(config, library)  # validates the config: refuses before binding
        self.request_log = self.app.state.request_log
        self.sock = bind(config)
        self.port = self.sock.getsockname()[1]
        uv = uvicorn.Config(self.app, log_level="warning", loop="asyncio", http="h11", lifespan="on", access_log=False, timeout_graceful_shutdown=5)
        self.server = uvicorn.Server(uv)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self.config.host if ":" not in self.config.host else f"[{self.config.host}]"
        return f"http://{host}:{self.port}/v1"

    def serve_forever(self) -> None:
        """Block until Ctrl+C (uvicorn handles the signal and drains requests)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def start(self) -> "ApiServer":
        """Serve on a background thread (tests, the Settings toggle); returns once listening."""
        started = threading.Event()
        original = self.server.startup

        async def startup(sockets=None):
            await original(sockets=sockets)
            started.set()

        self.server.startup = startup
        self._thread = threading.Thread(target=self.serve_forever, name="atelier-api", daemon=True)
        self._thread.start()
        while not started.wait(0.05):
            if not self._thread.is_alive():
                raise RuntimeError("The API server stopped while starting.")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

"""Server settings and the start-up security checks.

Loopback is the default and the only address that may be served without an API key:
anything else would hand every pack in the library to whoever can reach the port.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from desktop.engines.errors import RequestError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
MIN_KEY_CHARS = 8
DEFAULT_MAX_BODY = 2 * 1024 * 1024  # a 200k-character conversation in JSON fits; an upload does not


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_key_file(path: str | Path) -> str:
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise RequestError(f"Cannot read the API key file '{path}': {exc.strerror or exc}.") from None
    if not key:
        raise RequestError(f"The API key file '{path}' is empty.")
    return key


@dataclass
class ServerConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()  # CORS stays off unless origins are listed
    max_body_bytes: int = DEFAULT_MAX_BODY
    max_queue: int = 8  # requests that may wait per model before 429
    memory_budget_bytes: int | None = None  # None: 60% of the memory available at start
    workers: int = 8  # engine threads (different models run side by side)
    # Clients that stream from one text model at once, each on its own engine replica
    # (own KV cache, own memory); more wait in the model's queue.
    text_streams: int = 4

    def validate(self) -> None:
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise RequestError(f"Port must be between 0 and 65535 (got {self.port}).")
        if self.api_key is not None and len(self.api_key) < MIN_KEY_CHARS:
            raise RequestError(f"The API key must be at least {MIN_KEY_CHARS} characters.")
        if not is_loopback(self.host) and not self.api_key:
            raise RequestError(
                f"Refusing to listen on {self.host} without an API key: anyone who can reach it could use "
                "every model in your library. Pass --api-key or --api-key-file, or keep the default 127.0.0.1."
            )
        if any(o == "*" for o in self.cors_origins) and not self.api_key:
            raise RequestError("CORS for every origin ('*') needs an API key: any web page could use the server otherwise.")
        if not isinstance(self.text_streams, int) or not 1 <= self.text_streams <= 16:
            raise RequestError(f"Concurrent streams per text model must be between 1 and 16 (got {self.text_streams}).")
        if self.max_body_bytes < 1024:
            raise RequestError("The request size limit must be at least 1 KB.")

    def budget(self) -> int:
        if self.memory_budget_bytes:
            return self.memory_budget_bytes
        from desktop.engines.memory import available_memory_bytes

        return int((available_memory_bytes() or 8 * 2**30) * 0.6)

"""``serve``: an OpenAI-compatible HTTP API over every pack in the library.

Loopback only unless an API key is given; the start-up checks refuse anything else
before a socket is opened (see desktop/server/config.py).
"""

from __future__ import annotations

import sys

from desktop.cli import command


@command("serve", "serve every pack in the library over an OpenAI-compatible HTTP API (default http://127.0.0.1:8765/v1)")
def configure(p):
    from desktop.server.config import DEFAULT_HOST, DEFAULT_MAX_BODY, DEFAULT_PORT

    p.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (default: 127.0.0.1; any other needs an API key)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"TCP port (default: {DEFAULT_PORT}; 0 picks a free one)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="clients must send 'Authorization: Bearer KEY'")
    key.add_argument("--api-key-file", help="read the API key from this file (keeps it out of the process list)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow browser pages from ORIGIN (repeatable; CORS is off by default)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / 2**20, help="largest request body in MB (default: 2)")
    p.add_argument("--max-queue", type=int, default=8, help="requests that may wait per model before 429 (default: 8)")
    p.add_argument("--memory-budget-gb", type=float, help="memory for resident models; least recently used are unloaded (default: 60%% of free memory)")
    return run


def run(args) -> int:
    from desktop.server.config import ServerConfig, read_key_file
    from desktop.server.run import ApiServer

    config = ServerConfig(
        host=args.host,
        port=args.port,
        api_key=read_key_file(args.api_key_file) if args.api_key_file else args.api_key,
        cors_origins=tuple(args.cors_origin),
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_queue=args.max_queue,
        memory_budget_bytes=int(args.memory_budget_gb * 2**30) if args.memory_budget_gb else None,
    )
    server = ApiServer(config)
    models = len(server.app.state.catalog.entries())
    print(f"Serving {models} model(s) at {server.url} (Ctrl+C stops)", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0

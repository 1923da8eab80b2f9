"""``serve``: an OpenAI-compatible HTTP API over every pack in the library.

Loopback only unless an API key is given; the start-up checks refuse anything else
before a socket is opened (see desktop/server/config.py). ``--ray`` serves the same API
from a Ray Serve cluster instead (desktop/server/ray_app.py).
"""

from __future__ import annotations

import sys

from desktop.cli import command


@command("serve", "serve every pack in the library over an OpenAI-compatible HTTP API (default http://127.0.0.1:8765/v1)")
def configure(p):
    from desktop.server.config import DEFAULT_HOST, DEFAULT_MAX_BODY, DEFAULT_PORT

    p.add_argument("--host", help=f"address to listen on (default: {DEFAULT_HOST}; any other needs an API key)")
    p.add_argument("--port", type=int, help=f"TCP port (default: {DEFAULT_PORT}, with --ray the config's or 8000; 0 picks a free one)")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--api-key", help="clients must send 'Authorization: Bearer KEY'")
    key.add_argument("--api-key-file", help="read the API key from this file (keeps it out of the process list)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow browser pages from ORIGIN (repeatable; CORS is off by default)")
    p.add_argument("--max-body-mb", type=float, default=DEFAULT_MAX_BODY / 2**20, help="largest request body in MB (default: 2)")
    p.add_argument("--max-queue", type=int, default=8, help="requests that may wait per model before 429 (default: 8)")
    p.add_argument("--streams", type=int, default=4, help="clients streaming from one text model at once, each on its own copy of the model (default: 4)")
    ray = p.add_argument_group("team server (Ray Serve; needs: bash scripts/setup --team)")
    ray.add_argument("--ray", action="store_true", help="serve from a Ray Serve cluster: a private one on this machine unless --address is given")
    ray.add_argument("--address", help="join this Ray cluster ('auto': the one started on this machine with 'ray start'; or ray://HOST:10001)")
    ray.add_argument("--ray-config", metavar="FILE", help="replicas, models per replica and autoscaling (see resources/serve/team.yaml)")
    p.add_argument("--memory-budget-gb", type=float, help="memory for resident models; least recently used are unloaded (default: 60%% of free memory)")
    return run


def run(args) -> int:
    from desktop.server.config import DEFAULT_HOST, DEFAULT_PORT, ServerConfig, read_key_file
    from desktop.server.run import ApiServer

    if (args.address or args.ray_config) and not args.ray:
        from desktop.engines.errors import RequestError

        raise RequestError("--address and --ray-config need --ray.")
    team = None
    if args.ray:
        from desktop.server.ray_app import load_team_config

        team = load_team_config(args.ray_config)
    config = ServerConfig(
        host=args.host or (team.host if team else DEFAULT_HOST),
        port=(team.port if team else DEFAULT_PORT) if args.port is None else args.port,
        api_key=read_key_file(args.api_key_file) if args.api_key_file else args.api_key,
        cors_origins=tuple(args.cors_origin),
        max_body_bytes=int(args.max_body_mb * 2**20),
        max_queue=args.max_queue,
        text_streams=args.streams,
        memory_budget_bytes=int(args.memory_budget_gb * 2**30) if args.memory_budget_gb else None,
    )
    if team is not None:
        return _run_on_ray(config, team, args.address)
    server = ApiServer(config)
    models = len(server.app.state.catalog.entries())
    print(f"Serving {models} model(s) at {server.url} (Ctrl+C stops)", file=sys.stderr, flush=True)
    server.serve_forever()
    return 0


def _run_on_ray(config, team, address: str | None) -> int:
    import signal
    import threading

    from desktop.engines.errors import RequestError
    from desktop.engines.packs.library import Library
    from desktop.offline import runtime_guard

    config.validate()  # refuse a public address without a key before any cluster starts
    if config.port == 0:
        raise RequestError("With --ray, give the port to serve on (Serve's proxy cannot pick a free one and report it).")
    try:
        from desktop.server import ray_app
        import ray.serve  # noqa: F401
    except ImportError:
        raise RequestError("Ray Serve is not installed; install the team extra with: bash scripts/setup --team") from None
    guard = runtime_guard()
    if guard is not None:
        # Ray's driver talks to its cluster over TCP (loopback for the private cluster), which
        # the offline guard refuses in this process. The cluster itself is kept private by
        # ray_app.connect: loopback only, no dashboard, usage stats off.
        guard.uninstall()
    where = address or "a private cluster on 127.0.0.1"
    print(f"Starting Ray Serve on {where}...", file=sys.stderr, flush=True)
    ray_app.connect(address, team)
    try:
        url = ray_app.deploy(config, team, Library().root)
        deployed = ", ".join(f"{m} x{s.autoscaling and 'auto' or s.num_replicas}" for m, s in team.deployments.items())
        print(f"Serving the library at {url} from Ray Serve ({deployed}); Ctrl+C stops", file=sys.stderr, flush=True)
        stop = threading.Event()
        # SIGTERM (systemd, docker stop) stops as cleanly as Ctrl+C: Serve drains, and the
        # private cluster's processes are shut down rather than left running.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        ray_app.shutdown(keep_cluster=bool(address))
    return 0

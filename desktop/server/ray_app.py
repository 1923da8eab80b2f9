"""The API server on Ray Serve: the same FastAPI app, engines spread over a cluster.

One ingress deployment runs :func:`desktop.server.app.create_app` unchanged (routes, API
key, body limit, error shapes) but hands each engine job to a model deployment - one per
modality - instead of an in-process pool. Model deployments use Serve's model
multiplexing: a request carries its pack name as the multiplexed model id, Serve routes
it to a replica that already holds that pack when it can, and each replica keeps at most
``max_models_per_replica`` packs, evicting the least recently used.

A Ray cluster runs whatever code a client sends it, so the local cluster started here is
loopback-only, without the dashboard and without usage stats; see the README section
"Serving a team with Ray Serve" for a multi-node cluster on a private network.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from desktop.engines.errors import RequestError

MODALITIES = ("text", "image", "speech")
APP_NAME = "atelier"
# Ray reports usage to the Ray team unless told not to; it must be set before Ray starts.
PRIVATE_RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
LOCAL_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": a one-machine cluster on loopback
SINKHOLE_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, a request fails at once


@dataclass
class ModelsSpec:
    """How one modality's deployment is sized (one entry under ``deployments:``)."""

    num_replicas: int = 1
    max_models_per_replica: int = 2
    num_cpus: float = 1.0
    max_ongoing_requests: int = 8
    autoscaling: dict[str, Any] | None = None  # Serve's autoscaling_config; replaces num_replicas


@dataclass
class TeamConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    num_cpus: int | None = None  # local cluster only; None: every core
    ingress_replicas: int = 1
    deployments: dict[str, ModelsSpec] = field(default_factory=lambda: {m: ModelsSpec() for m in MODALITIES})


def load_team_config(path: str | Path | None) -> TeamConfig:
    """Read a team config (YAML or JSON; see resources/serve/team.yaml). Unknown keys are
    refused so a typo does not silently fall back to a default."""
    if path is None:
        return TeamConfig()
    try:
        import yaml  # a dependency of ray[serve]
    except ImportError:
        raise RequestError("Ray Serve is not installed; install the team extra with: bash scripts/setup --team") from None
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise RequestError(f"Cannot read the Ray config '{path}': {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise RequestError(f"The Ray config '{path}' is not valid YAML: {exc}.") from None
    try:
        http, cluster, ingress = data.pop("http", {}) or {}, data.pop("cluster", {}) or {}, data.pop("ingress", {}) or {}
        deployments = data.pop("deployments", None)
        if data:
            raise TypeError(f"unknown key(s) {', '.join(map(str, data))}")
        specs = {m: ModelsSpec() for m in MODALITIES} if deployments is None else {}
        for modality, spec in (deployments or {}).items():
            if modality not in MODALITIES:
                raise TypeError(f"unknown modality '{modality}' (use {', '.join(MODALITIES)})")
            specs[modality] = ModelsSpec(**(spec or {}))
        return TeamConfig(host=http.pop("host", "127.0.0.1"), port=int(http.pop("port", 8000)), num_cpus=cluster.pop("num_cpus", None),
                          ingress_replicas=int(ingress.pop("num_replicas", 1)), deployments=specs, **_no_more(http, cluster, ingress))
    except (TypeError, ValueError) as exc:
        raise RequestError(f"The Ray config '{path}': {exc}.") from None


def _no_more(*sections: dict) -> dict:
    left = [k for s in sections for k in s]
    if left:
        raise TypeError(f"unknown key(s) {', '.join(map(str, left))}")
    return {}


# -- the replica side ---------------------------------------------------------------------

class ResidentModel:
    """One multiplexed pack in a model replica: its engine behind the same FIFO slot and
    worker-thread job runner the local server uses (an engine is not thread-safe)."""

    def __init__(self, name: str, engine, executor, max_queue: int):
        from .jobs import JobRunner
        from .pool import ModelPool

        self.pool = ModelPool(None, budget_bytes=0, max_queue=max_queue, open_engine=_never_opens)
        self.pool.adopt(name, engine)
        self.jobs = JobRunner(self.pool, executor)

    def __del__(self):  # Serve calls this when it evicts the pack (LRU); idempotent
        self.pool.close()


def _never_opens(pack, settings=None):
    raise AssertionError("a resident model's engine is opened by the multiplexed loader")


def models_deployment(modality: str, spec: ModelsSpec, library_root: str, max_queue: int):
    """A bound Serve deployment serving every ``modality`` pack of the library."""
    from ray import serve

    @serve.deployment(name=f"{modality}-models", ray_actor_options={"num_cpus": spec.num_cpus}, max_ongoing_requests=spec.max_ongoing_requests,
                      **({"autoscaling_config": spec.autoscaling} if spec.autoscaling else {"num_replicas": spec.num_replicas}))
    class AtelierModels:
        def __init__(self, root: str, queue: int):
            import collections
            from concurrent.futures import ThreadPoolExecutor

            from desktop.engines.packs.library import Library

            from .app import Catalog

            self.catalog = Catalog(Library(Path(root)))
            self.executor = ThreadPoolExecutor(max_workers=spec.max_models_per_replica + 1, thread_name_prefix="atelier-engine")
            self.max_queue = queue
            self.records = collections.deque(maxlen=32)  # the last jobs of every pack held here


        @serve.multiplexed(max_num_models_per_replica=spec.max_models_per_replica)
        async def resident(self, name: str) -> ResidentModel:
            import asyncio

            from desktop.engines.base import open_engine

            pack = self.catalog.entry(name, modality).root
            loop = asyncio.get_running_loop()
            engine = await loop.run_in_executor(self.executor, lambda: open_engine(_load(pack)))
            model = ResidentModel(name, engine, self.executor, self.max_queue)
            model.jobs.records = self.records
            return model

        async def run(self, make):
            """Stream the events of ``make(engine, slot)`` for the request's pack."""
            name = serve.get_multiplexed_model_id()
            model = await self.resident(name)
            async for event in model.jobs.events(name, make):
                yield event

        def recent_jobs(self) -> list[dict]:
            """What this replica's last jobs did (produced / delivered / cancelled)."""
            return [asdict(r) for r in self.records]

        def replica_id(self) -> str:
            return serve.get_replica_context().replica_id.unique_id

    return AtelierModels.bind(library_root, max_queue)


def _load(root: Path):
    from desktop.engines.packs.pack import load_pack

    return load_pack(root)


# -- the ingress side ---------------------------------------------------------------------

class ServeJobs:
    """``app.state.jobs`` for Serve: each job streams from the replica that holds the pack."""

    def __init__(self, handles: dict, library):
        self.handles, self.library = handles, library

    async def events(self, model: str, make, affinity=None):
        # ``affinity`` (which of a model's engines holds the conversation) is the local
        # pool's choice; here Serve's multiplexing picks the replica.
        from ray.exceptions import RayTaskError

        from .app import Catalog
        from .errors import ApiError

        modality = Catalog(self.library).entry(model).manifest.get("modality")
        handle = self.handles.get(modality)
        if handle is None:
            raise ApiError(503, f"This team server has no {modality} deployment; add one under 'deployments:' in its Ray config.", "server_error", "model_not_deployed")
        stream = handle.options(stream=True, multiplexed_model_id=model).run.remote(make)
        try:
            async for event in stream:
                yield event
        except RayTaskError as exc:
            # The replica's own typed error (429, 400, 404...) - not Ray's traceback text.
            raise (exc.cause if isinstance(exc.cause, Exception) else exc) from None
        finally:
            stream.cancel()  # the client hung up: stop the engine in the replica too (explicitly, not left to Serve)


def ingress_deployment(config, library_root: str, handles: dict, replicas: int):
    from ray import serve

    @serve.deployment(name="api", num_replicas=replicas, ray_actor_options={"num_cpus": 0})
    @serve.ingress()
    class AtelierApi:
        def __init__(self, server_config, root: str, models: dict):
            self.config, self.root, self.models = server_config, root, models

        def __serve_build_asgi_app__(self):
            from desktop.engines.packs.library import Library

            from .app import create_app

            library = Library(Path(self.root))
            return create_app(self.config, library, jobs=ServeJobs(self.models, library))

    return AtelierApi.bind(config, library_root, handles)


# -- cluster and deployment ---------------------------------------------------------------

def connect(address: str | None, team: TeamConfig) -> None:
    """Join ``address`` (``auto``, ``ray://host:10001``) or start a private local cluster:
    loopback only, no dashboard, no usage stats."""
    for key, value in PRIVATE_RAY_ENV.items():
        os.environ.setdefault(key, value)
    import ray

    if address:
        ray.init(address=address, namespace=APP_NAME, logging_level="warning", log_to_driver=False)
        return
    # ray.init turns 127.0.0.1 into "the address other machines reach this one at" (found
    # by routing towards a public address), and its GCS, raylet and agents then listen on
    # every interface. Ray's single-machine switch keeps the node - and every server it
    # starts - on loopback. It is read at import, so the constant is set here too.
    os.environ[LOCAL_ONLY_ENV] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    with _http_sinkhole():
        ray.init(num_cpus=team.num_cpus or local_cpus(team), include_dashboard=False, _node_ip_address="127.0.0.1", namespace=APP_NAME,
                 logging_level="warning", log_to_driver=False,
                 runtime_env={"worker_process_setup_hook": f"{__name__}.keep_replicas_on_loopback"})


@contextmanager
def _http_sinkhole():
    """Start the cluster's processes with every HTTP proxy pointing at a closed loopback
    port (loopback itself exempt). Even with usage stats off, Ray's head process asks
    cloud metadata services (169.254.169.254, metadata.google.internal) which cloud it
    runs on (measured under strace); through the sinkhole those requests fail on this
    machine and no packet or name lookup leaves it. The driver's own environment is
    restored afterwards; a proxy the user set is left alone."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "NO_PROXY", "no_proxy")
    if any(os.environ.get(n) for n in names[:4]):
        yield
        return
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: SINKHOLE_PROXY for n in names[:4]} | {n: "127.0.0.1,localhost,::1" for n in names[4:]})
    try:
        yield
    finally:
        for n, value in saved.items():
            if value is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = value


def local_cpus(team: TeamConfig) -> int:
    """Every core, and at least what the replicas reserve: Serve would otherwise wait
    forever for a replica the cluster has no room for."""
    import math

    reserved = sum(s.num_cpus * (s.autoscaling or {}).get("min_replicas", s.num_replicas) for s in team.deployments.values())
    return max(os.cpu_count() or 1, math.ceil(reserved))


def keep_replicas_on_loopback() -> None:
    """Worker set-up hook of the local cluster. Serve (2.60) binds each replica's
    inter-deployment gRPC server to every interface ("[::]:0") whatever the node's
    address; on a one-machine cluster nothing outside it may reach a replica."""
    from ray.serve._private import replica

    bind = replica.add_port_to_grpc_server
    if getattr(bind, "atelier_loopback", False):
        return

    def loopback_bind(server, address: str):
        return bind(server, address.replace("[::]", "127.0.0.1"))

    loopback_bind.atelier_loopback = True
    replica.add_port_to_grpc_server = loopback_bind


def deploy(config, team: TeamConfig, library_root: str | Path) -> str:
    """Start Serve's HTTP proxy on ``config.host:config.port`` and deploy; returns the API's URL."""
    from ray import serve

    config.validate()  # the local server's rule: a non-loopback address needs an API key
    root = str(Path(library_root).resolve())
    serve.start(http_options={"host": config.host, "port": config.port}, proxy_location="HeadOnly")
    handles = {m: models_deployment(m, spec, root, config.max_queue) for m, spec in team.deployments.items()}
    serve.run(ingress_deployment(config, root, handles, team.ingress_replicas), name=APP_NAME, route_prefix="/", blocking=False)
    host = config.host if ":" not in config.host else f"[{config.host}]"
    return f"http://{host}:{config.port}/v1"


def replica_ids(modality: str, samples: int = 16) -> set[str]:
    """The replicas that answered ``samples`` calls to a model deployment (a health check
    that each replica is up and reachable)."""
    from ray import serve

    handle = serve.get_deployment_handle(f"{modality}-models", app_name=APP_NAME)
    return {handle.replica_id.remote().result(timeout_s=60) for _ in range(samples)}


def shutdown(keep_cluster: bool = False) -> None:
    """Stop serving. On a cluster we joined (``keep_cluster``) only our application is
    removed; the private local cluster is stopped with Serve."""
    import ray
    from ray import serve

    try:
        if keep_cluster:
            serve.delete(APP_NAME)
        else:
            serve.shutdown()
    finally:
        ray.shutdown()

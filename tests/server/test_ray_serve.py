"""The API server on Ray Serve: a private single-node cluster on 127.0.0.1, the tiny text
pack on two multiplexed replicas, driven by the official openai client.

Needs the ``team`` extra (ray[serve]); scripts/test installs it. Nothing here listens on or
connects to any address but 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

import pytest

pytest.importorskip("ray.serve", reason="the team extra (ray[serve]) is not installed: bash scripts/setup --team")

TEXT, LONG = "tiny-llama-fp32", "tiny-long"
TEAM_YAML = """
cluster: {num_cpus: 2}
http: {host: 127.0.0.1, port: PORT}
deployments:
  text: {num_replicas: 2, max_models_per_replica: 1, num_cpus: 0.5, max_ongoing_requests: 4}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_addresses() -> dict[str, str]:
    """{address: process name} for every socket this process's Ray children (GCS, raylet,
    agents, Serve's proxy and replicas) listen on."""
    import psutil

    addrs = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            addrs |= {f"{c.laddr.ip}:{c.laddr.port}": proc.name() for c in proc.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return addrs


def _child_env(name: str) -> dict[str, str | None]:
    """{process name: its value of environment variable ``name``} for the Ray children."""
    import psutil

    out = {}
    for proc in psutil.Process().children(recursive=True):
        try:
            env = proc.environ()
            if env:  # empty when a process title (setproctitle) overwrote the environment block
                out[f"{proc.name()}[{proc.pid}]"] = env.get(name)
        except psutil.Error:
            pass
    return out


def _finished_job(model: str, within_s: float = 60.0) -> dict:
    """The last finished job of ``model``, as the replica holding it recorded it."""
    from ray import serve

    from desktop.server import ray_app

    handle = serve.get_deployment_handle("text-models", app_name=ray_app.APP_NAME).options(multiplexed_model_id=model)
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        jobs = [j for j in handle.recent_jobs.remote().result(timeout_s=30) if j["model"] == model and j["finished"]]
        if jobs:
            return jobs[-1]
        time.sleep(0.1)
    raise AssertionError(f"no finished job of {model} within {within_s} s")


def _is_loopback(ip: str) -> bool:
    import ipaddress

    addr = ipaddress.ip_address(ip)
    return addr.is_loopback or bool(getattr(addr, "ipv4_mapped", None) and addr.ipv4_mapped.is_loopback)


@pytest.fixture(scope="module")
def text_library(tmp_path_factory, cache_dir) -> Path:
    from desktop.engines.packs.pack import load_pack
    from tests.server.conftest import export_long_tiny
    from tests.tiny_models import export_tiny

    root = tmp_path_factory.mktemp("ray-library")
    for src in (export_tiny("llama", cache_dir / "ray-serve"), export_long_tiny(cache_dir / "ray-serve")):
        shutil.copytree(src, root / load_pack(src, verify_hashes=False).name)
    return root


@pytest.mark.slow
def test_text_pack_on_two_multiplexed_replicas_through_serve(text_library, tmp_path):
    import openai
    from ray import serve

    from desktop.server import ray_app
    from desktop.server.config import ServerConfig

    config_file = tmp_path / "team.yaml"
    config_file.write_text(TEAM_YAML.replace("PORT", str(_free_port())), encoding="utf-8")
    team = ray_app.load_team_config(config_file)
    server = ServerConfig(host=team.host, port=team.port)
    t0 = time.perf_counter()
    ray_app.connect(None, team)
    try:
        url = ray_app.deploy(server, team, text_library)
        started = time.perf_counter() - t0
        # Private by default: every socket the cluster listens on is loopback-only.
        listening = _listening_addresses()
        open = {a: n for a, n in listening.items() if not _is_loopback(a.rsplit(":", 1)[0])}
        assert listening and not open, open
        # Ray asks cloud metadata services which cloud it is on even with usage stats off:
        # every cluster process has its HTTP proxy on a closed loopback port.
        proxies = _child_env("HTTP_PROXY")
        assert proxies and not {n: v for n, v in proxies.items() if v != ray_app.SINKHOLE_PROXY}, proxies
        assert "HTTP_PROXY" not in os.environ  # the driver's own environment is restored

        with openai.OpenAI(base_url=url, api_key="unused-on-loopback", max_retries=0, timeout=120) as client:
            assert sorted(m.id for m in client.models.list().data) == [TEXT, LONG]
            messages = [{"role": "user", "content": "Hello there"}]
            t1 = time.perf_counter()
            reply = client.chat.completions.create(model=TEXT, messages=messages, max_tokens=12, temperature=0)
            first = time.perf_counter() - t1
            assert reply.usage.completion_tokens == 12 and reply.choices[0].finish_reason == "length"
            chunks = list(client.chat.completions.create(model=TEXT, messages=messages, max_tokens=12, temperature=0, stream=True,
                                                         stream_options={"include_usage": True}))
            assert chunks[0].choices[0].delta.role == "assistant"
            streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert len(chunks) > 3 and streamed == reply.choices[0].message.content  # token by token, same greedy text
            assert chunks[-1].usage.completion_tokens == 12
            # A typed engine error crosses the cluster as the local server's status and one line.
            with pytest.raises(openai.BadRequestError) as err:
                client.chat.completions.create(model=TEXT, messages=[{"role": "user", "content": "word " * 400}], max_tokens=4)
            assert err.value.code == "context_length_exceeded" and "Traceback" not in err.value.message
            with pytest.raises(openai.NotFoundError):
                client.chat.completions.create(model="no-such-pack", messages=messages)
            # A client that hangs up mid-stream stops the engine in the replica, two hops away.
            stream = client.chat.completions.create(model=LONG, messages=messages, max_tokens=4000, stream=True, extra_body={"ignore_eos": True})
            for n, _ in enumerate(stream):
                if n == 3:
                    break
            stream.close()
            job = _finished_job(LONG)
            assert job["cancelled"] and job["produced"] < 4000, job

        status = serve.status().applications[ray_app.APP_NAME].deployments["text-models"]
        assert status.replica_states.get("RUNNING") == 2
        assert len(ray_app.replica_ids("text")) == 2
        print(f"\ncluster+deploy {started:.1f} s, first chat {first:.2f} s")
    finally:
        ray_app.shutdown()


def test_team_config_refuses_typos_and_unknown_modalities(tmp_path):
    from desktop.engines.errors import RequestError
    from desktop.server import ray_app

    bad = tmp_path / "bad.yaml"
    bad.write_text("deployments:\n  text: {num_replica: 2}\n", encoding="utf-8")
    with pytest.raises(RequestError, match="num_replica"):
        ray_app.load_team_config(bad)
    bad.write_text("deployments:\n  video: {}\n", encoding="utf-8")
    with pytest.raises(RequestError, match="video"):
        ray_app.load_team_config(bad)
    bad.write_text("http: {host: 0.0.0.0, prot: 1}\n", encoding="utf-8")
    with pytest.raises(RequestError, match="prot"):
        ray_app.load_team_config(bad)
    sample = ray_app.load_team_config(Path(__file__).resolve().parents[2] / "resources" / "serve" / "team.yaml")
    assert sample.host == "127.0.0.1" and set(sample.deployments) == {"text", "image", "speech"}


def test_cli_refuses_a_public_address_without_a_key_before_any_cluster_starts(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, ATELIER_HOME=str(tmp_path / "home"), PYTHONPATH=str(root))
    done = subprocess.run([sys.executable, "main.py", "serve", "--ray", "--host", "0.0.0.0"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Refusing to listen on 0.0.0.0 without an API key" in done.stderr
    assert "Starting Ray" not in done.stderr and "Traceback" not in done.stderr
    done = subprocess.run([sys.executable, "main.py", "serve", "--address", "auto"], cwd=root, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "need --ray" in done.stderr and "Traceback" not in done.stderr

"""API server benchmark: 1, 4 and 16 concurrent streaming chat clients against SmolLM2,
beside llama.cpp's server (``llama_cpp.server``) of the same GGUF, in the same run.

Our server runs in this process on 127.0.0.1 (port 0); llama.cpp's runs as a child
process of the bench-only venv (``--llama-python``, default /work/llamacpp-venv) on
another free loopback port, and is stopped at the end. Each client is a thread with its
own openai client streaming ``--max-tokens`` tokens; the prompts differ per request so
no reply reuses another's KV cache. Reports requests/s, aggregate generated tokens/s
and p50/p95 time to first token, and the load average.

    python bench/server.py [--requests 16] [--max-tokens 64] [--clients 1 4 16]
                           [--streams 4] [--llama-python PATH] [--gguf FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

MODEL = "smollm2-135m-instruct"
LLAMA_PYTHON = "/work/llamacpp-venv/bin/python"


def one_request(client, model: str, i: int, max_tokens: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    ttft, chunks, usage = None, 0, None
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"Request {i}: write a short story about a lighthouse."}],
        max_tokens=max_tokens, temperature=0.7, seed=i, stream=True, stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            chunks += 1
            if ttft is None:
                ttft = time.perf_counter() - t0
        if chunk.usage:
            usage = chunk.usage.completion_tokens
    # A server that sends no usage is counted by its content chunks (one per token in both).
    return (ttft if ttft is not None else time.perf_counter() - t0), (usage if usage is not None else chunks)


def run(url: str, model: str, clients: int, requests: int, max_tokens: int) -> dict:
    import openai

    ttfts, tokens, lock = [], [], threading.Lock()
    counter = iter(range(requests))
    errors: list[str] = []

    def worker():
        with openai.OpenAI(base_url=url, api_key=os.environ.get("BENCH_KEY", "bench"), max_retries=0, timeout=900) as client:
            for i in counter:
                try:
                    t, n = one_request(client, model, i, max_tokens)
                except openai.OpenAIError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                with lock:
                    ttfts.append(t)
                    tokens.append(n)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if not ttfts:
        return {"clients": clients, "requests": 0, "errors": errors[:3]}
    q = statistics.quantiles(ttfts, n=20) if len(ttfts) >= 2 else ttfts * 19
    row = {
        "clients": clients,
        "requests": len(ttfts),
        "requests_per_s": round(len(ttfts) / wall, 3),
        "tokens_per_s": round(sum(tokens) / wall, 1),
        "tokens": sum(tokens),
        "ttft_p50_s": round(statistics.median(ttfts), 3),
        "ttft_p95_s": round(q[18], 3),
        "wall_s": round(wall, 1),
    }
    if errors:
        row["errors"] = errors[:3]
    return row


def default_gguf() -> Path | None:
    """The GGUF our SmolLM2 pack was exported from (its manifest names it)."""
    from desktop.engines.packs.library import Library

    try:
        source = Library().load(MODEL).manifest.get("source", {})
    except Exception:  # noqa: BLE001 - no pack: no default
        return None
    location = Path(source.get("location", ""))
    return location if source.get("kind") == "gguf" and location.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LlamaServer:
    """``python -m llama_cpp.server`` of ``gguf`` on a free loopback port, stopped on exit."""

    def __init__(self, python: str, gguf: Path, threads: int, parallel_ctx: int):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [python, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", MODEL, "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(parallel_ctx), "--n_threads", str(threads), "--verbose", "False",
               "--interrupt_requests", "False"]  # its default cuts a running stream off when another request arrives
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def __enter__(self):
        import urllib.request

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited at start: {self.proc.stderr.read()[-500:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)  # polling its start-up, bounded by the deadline
        raise RuntimeError("llama_cpp.server did not start within 300 s")

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def series(name: str, url: str, args) -> None:
    # Warm-up: load the model, and on our server open its replicas, so the rows measure
    # serving, not loading (llama.cpp's server also loads before its first row).
    run(url, MODEL, args.streams, args.streams, 8)
    for n in args.clients:
        row = run(url, MODEL, n, max(args.requests, n), args.max_tokens)
        print(json.dumps({"server": name, **row}), flush=True)


def main() -> int:
    from desktop.engines.packs.library import Library
    from desktop.server.config import ServerConfig
    from desktop.server.run import ApiServer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=16, help="requests per row (at least one per client)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--streams", type=int, default=4, help="our server: concurrent streams per text model")
    ap.add_argument("--llama-python", default=LLAMA_PYTHON, help="python of a venv with llama-cpp-python[server]")
    ap.add_argument("--gguf", help="the GGUF for llama.cpp (default: the one the SmolLM2 pack was made from)")
    ap.add_argument("--skip", choices=["atelier", "llama"], action="append", default=[])
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}  load average at start: {os.getloadavg()[:3]}", flush=True)

    if "atelier" not in args.skip:
        server = ApiServer(ServerConfig(port=0, max_queue=64, text_streams=args.streams), Library()).start()
        try:
            series(f"atelier (streams={args.streams})", server.url, args)
        finally:
            server.stop()

    if "llama" not in args.skip:
        gguf = Path(args.gguf) if args.gguf else default_gguf()
        if not Path(args.llama_python).is_file():
            print(f"llama.cpp row skipped: no python at {args.llama_python} (build the bench venv: python -m venv /work/llamacpp-venv; "
                  "CMAKE_ARGS=-DGGML_NATIVE=ON /work/llamacpp-venv/bin/pip install 'llama-cpp-python[server]'), or pass --llama-python PATH.")
        elif gguf is None or not gguf.is_file():
            print("llama.cpp row skipped: no GGUF of SmolLM2 found; pass --gguf FILE.")
        else:
            with LlamaServer(args.llama_python, gguf, threads=os.cpu_count() or 1, parallel_ctx=2048) as llama:
                series(f"llama_cpp.server ({gguf.name})", llama.url, args)
    print(f"load average at end: {os.getloadavg()[:3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""API server benchmark: 1 and 4 concurrent streaming chat clients against a text pack.

The server runs in this process on 127.0.0.1 (port 0); each client is a thread with its
own openai client streaming ``--max-tokens`` tokens (ignore the content: the prompts
differ per request so no reply reuses another's KV cache). Reports requests/s,
aggregate generated tokens/s and p50/p95 time to first token. Requests for one model
queue (one engine, one KV cache), so 4 clients measure queueing fairness and overhead,
not parallel decoding.

    python bench/server.py [--model smollm2-135m-instruct] [--requests 8] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def one_request(client, model: str, i: int, max_tokens: int) -> tuple[float, int]:
    t0 = time.perf_counter()
    ttft, tokens = None, 0
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": f"Request {i}: write a short story about a lighthouse."}],
        max_tokens=max_tokens, temperature=0.7, seed=i, stream=True, stream_options={"include_usage": True},
    )
    for chunk in stream:
        if ttft is None and chunk.choices and chunk.choices[0].delta.content:
            ttft = time.perf_counter() - t0
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return (ttft if ttft is not None else time.perf_counter() - t0), tokens


def run(url: str, model: str, clients: int, requests: int, max_tokens: int) -> dict:
    import openai

    ttfts, tokens, lock = [], [], threading.Lock()
    counter = iter(range(requests))

    def worker():
        with openai.OpenAI(base_url=url, api_key="bench", max_retries=0, timeout=600) as client:
            for i in counter:
                t, n = one_request(client, model, i, max_tokens)
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
    q = statistics.quantiles(ttfts, n=20) if len(ttfts) >= 2 else ttfts * 19
    return {
        "clients": clients,
        "requests": len(ttfts),
        "requests_per_s": round(len(ttfts) / wall, 3),
        "tokens_per_s": round(sum(tokens) / wall, 1),
        "ttft_p50_s": round(statistics.median(ttfts), 3),
        "ttft_p95_s": round(q[18], 3),
        "wall_s": round(wall, 1),
    }


def main() -> int:
    from desktop.engines.packs.library import Library
    from desktop.server.config import ServerConfig
    from desktop.server.run import ApiServer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4])
    args = ap.parse_args()
    server = ApiServer(ServerConfig(port=0, max_queue=64), Library()).start()
    try:
        run(server.url, args.model, 1, 1, 8)  # warm-up: load the model
        for n in args.clients:
            print(run(server.url, args.model, n, args.requests, args.max_tokens), flush=True)
    finally:
        server.stop()
    try:
        print(f"load average: {open('/proc/loadavg').read().split()[:3]}")
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``text --model M --prompt P``: stream a reply to stdout."""

from __future__ import annotations

from desktop.cli import command
from desktop.commands import open_model, text_argument
from desktop.console import err, out_block, safe_text


@command("text", "chat with a text model; the reply streams to stdout")
def configure(p):
    p.add_argument("--model", help="pack name or folder (default: first text model)")
    p.add_argument("--prompt", required=True, help="the message; '-' reads stdin")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--max-tokens", type=int, default=512)
    p.add_argument("--seed", type=int)
    # unset: the model maker's recommendation the pack carries, else llama.cpp's defaults
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--min-p", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--stats", action="store_true", help="print tokens/s and timings to stderr")
    return run


def run(args) -> int:
    from dataclasses import replace

    from desktop.engines.events import Done, Token
    from desktop.engines.text.engine import ChatRequest
    from desktop.engines.text.sampling import SamplingSettings, pack_defaults
    from desktop.outputs.saving import save_chat_result

    prompt = text_argument(args.prompt, "--prompt")
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [{"role": "user", "content": prompt}]
    given = {k: getattr(args, k) for k in ("temperature", "top_k", "top_p", "min_p", "repetition_penalty", "seed") if getattr(args, k) is not None}
    request = ChatRequest(messages, max_tokens=args.max_tokens, sampling=SamplingSettings(**given))
    request.validate()  # fail before loading a model
    engine = open_model("text", args.model)
    request.sampling = replace(pack_defaults(engine.pack), **given)
    reply: list[str] = []
    try:
        for ev in engine.generate(request):
            if isinstance(ev, Token):
                shown = safe_text(ev.text)  # terminal controls made visible, newlines kept
                out_block(shown, end="", flush=True)
                reply.append(shown)  # the audit hashes exactly what stdout received
            elif isinstance(ev, Done):
                out_block("", flush=True)  # the reply's last line before any note on stderr
                save_chat_result("".join(reply), engine.pack, request.sampling, ev.stats.get("seed"), max_tokens=request.max_tokens)
                if ev.finish_reason == "context_full":
                    err("note: the reply stopped because the context window is full.")
                if args.stats:
                    err(" ".join(f"{k}={v}" for k, v in ev.stats.items()))
    finally:
        engine.close()
    return 0

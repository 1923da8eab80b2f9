"""``speak --model M --text T --out FILE.wav``: synthesise speech to a WAV with provenance."""

from __future__ import annotations

from pathlib import Path

from desktop.cli import command
from desktop.commands import check_output_file, open_model, text_argument
from desktop.console import err


@command("speak", "speak text with a voice and write a 16-bit WAV (provenance in its LIST/INFO chunk)")
def configure(p):
    p.add_argument("--model", help="voice pack name or folder (default: first speech model)")
    p.add_argument("--text", required=True, help="what to say; '-' reads stdin")
    p.add_argument("--out", required=True, type=Path, help="WAV file to write")
    p.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    p.add_argument("--speed", type=float, default=1.0, help="1 = the voice's pace (0.25-4)")
    p.add_argument("--speaker", help="speaker number or name (multi-speaker voices)")
    p.add_argument("--variation", type=float, default=1.0, help="multiplies both noise scales (0-2, 1 = the voice's defaults)")
    p.add_argument("--noise-scale", type=float, help="generator noise (0-2; overrides --variation)")
    p.add_argument("--noise-w", type=float, help="phoneme-duration noise (0-2; overrides --variation)")
    p.add_argument("--seed", type=int, help="same seed, same audio")
    p.add_argument("--stats", action="store_true", help="print RTF and timings to stderr")
    return run


def run(args) -> int:
    import numpy as np

    from desktop.engines.atomic_write import OutputExistsError
    from desktop.engines.errors import RequestError
    from desktop.engines.events import AudioChunk, Done, Notice
    from desktop.engines.speech.engine import SpeechRequest
    from desktop.outputs.saving import save_speech_result
    from desktop.engines.speech.synthesis import SynthesisSettings

    text = text_argument(args.text, "--text")
    synthesis = SynthesisSettings(speed=args.speed, variation=args.variation, noise_scale=args.noise_scale, noise_w=args.noise_w, speaker=args.speaker, seed=args.seed)
    request = SpeechRequest(text, synthesis)
    request.validate()  # before loading a model
    check_output_file(args.out, ".wav")
    if not args.overwrite and (args.out.exists() or args.out.is_symlink()):
        raise RequestError(f"{args.out.name} already exists; choose another --out or pass --overwrite.")
    engine = open_model("speech", args.model)
    chunks, stats = [], {}
    try:
        for ev in engine.generate(request):
            if isinstance(ev, AudioChunk):
                chunks.append(ev.samples)
            elif isinstance(ev, Notice):
                err(f"note: {ev.message}")
            elif isinstance(ev, Done):
                stats = ev.stats
    finally:
        engine.close()
    try:  # exclusive even now: another job may have taken the name since the check
        save_speech_result(np.concatenate(chunks), engine.sample_rate, engine.pack, request, stats, engine.provider.used, path=args.out, overwrite=args.overwrite)
    except OutputExistsError:
        raise RequestError(f"{args.out.name} was created by something else while this job ran; nothing was replaced. Choose another --out or pass --overwrite.") from None
    err(f"wrote {args.out} ({stats['audio_s']:.2f} s at {engine.sample_rate} Hz, seed {stats['seed']})")
    if args.stats:
        err(" ".join(f"{k}={v}" for k, v in stats.items()))
    return 0

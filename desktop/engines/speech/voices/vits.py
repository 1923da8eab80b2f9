"""A VITS voice, split the way Piper splits it: the voice's config (from the pack
manifest), the settings of one call (``synthesis.SynthesisSettings``), and the voice
object that owns the ONNX session.

Graph contract (Piper's, plus optional seeded noise):
  inputs  ``input`` [1, T] int64, ``input_lengths`` [1] int64, ``scales`` [3] float32
          (noise, length, noise_w), ``sid`` [1] int64 for multi-speaker voices, and
          ``noise_*`` banks [1, C, B] float32 that the graph tiles wherever VITS draws
          Gaussian noise. With the banks the caller's seed decides the noise, so the same
          seed gives the same samples; graphs without them draw noise inside onnxruntime.
  outputs ``output`` (the waveform, any shape with one non-unit axis); exports of ours
          also give ``durations`` (frames per input id).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from desktop.engines.config_limits import bounded_int, bounded_len, config_float, config_int
from desktop.engines.errors import EngineError, PackFormatError, RequestError
from desktop.engines.packs.pack import Pack
from desktop.engines.speech.phonemes import PhonemeIds, make_phonemizer
from desktop.engines.providers import RuntimeSettings
from desktop.engines.speech.sentences import scripts_for
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.engines.speech.voice_session import voice_session
from desktop.engines.speech.voices import register_voice

log = logging.getLogger(__name__)

PEAK = 0.95  # chunks are normalised to this peak, as Piper does (its raw output level varies)


@dataclass(frozen=True)
class VoiceConfig:
    sample_rate: int
    phonemizer: dict[str, Any]
    phoneme_id_map: dict[str, list[int]]
    id_style: str = "piper"
    blank_id: int = 0
    num_speakers: int = 1
    speaker_id_map: dict[str, int] = field(default_factory=dict)
    noise_scale: float = 0.667
    length_scale: float = 1.0
    noise_w: float = 0.8
    language: str = ""
    hop_length: int = 256

    @staticmethod
    def from_pack(pack: Pack) -> "VoiceConfig":
        """The voice config of ``pack``, every number checked against sane bounds before
        anything is built from it (config_limits.py)."""
        cfg, name = pack.config, pack.name
        try:
            inference = cfg.get("inference") or {}
            id_map = cfg["phoneme_id_map"]
            speakers = cfg.get("speaker_id_map") or {}
            bounded_len(id_map, "phoneme_id_map", name)
            bounded_len(speakers, "speaker_id_map", name)
            num_speakers = bounded_int(cfg.get("num_speakers", 1) or 1, "num_speakers", name)
            return VoiceConfig(
                sample_rate=bounded_int(cfg["sample_rate"], "sample_rate", name),
                phonemizer=dict(cfg["phonemizer"]),
                phoneme_id_map={str(k): _phoneme_ids(v, name) for k, v in id_map.items()},
                id_style=str(cfg.get("id_style", "piper")),
                blank_id=bounded_int(cfg.get("blank_id", 0), "blank_id", name),
                num_speakers=num_speakers,
                speaker_id_map={str(k): bounded_int(v, "speaker_id", name, f"the id of speaker '{str(k)[:40]}'") for k, v in speakers.items()},
                noise_scale=config_float(inference, "noise_scale", 0.667, name),
                length_scale=config_float(inference, "length_scale", 1.0, name),
                noise_w=config_float(inference, "noise_w", 0.8, name),
                language=str(cfg.get("language", "")),
                hop_length=config_int(cfg, "hop_length", 256, name),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise PackFormatError(f"Pack '{pack.name}' has an unusable voice config ({exc}); re-import or re-export it.") from None

    def speaker_names(self) -> list[str]:
        by_id = {v: k for k, v in self.speaker_id_map.items()}
        return [by_id.get(i, f"speaker {i}") for i in range(self.num_speakers)]


def _phoneme_ids(value, pack_name: str) -> list[int]:
    ids = value if isinstance(value, list) else [value]
    bounded_len(ids, "phoneme_ids_per_symbol", pack_name, "one phoneme's id list")
    return [bounded_int(i, "phoneme_id", pack_name, "a phoneme id") for i in ids]


@register_voice("vits", "piper-vits")
class VitsVoice:
    """A VITS voice (Piper, MMS-TTS): owns the ONNX session; turns one sentence's text
    into samples."""

    def __init__(self, pack: Pack, settings: RuntimeSettings):
        self.pack = pack
        self.config = VoiceConfig.from_pack(pack)
        self.ids = PhonemeIds(self.config.phoneme_id_map, self.config.id_style, self.config.blank_id)
        self.phonemizer = make_phonemizer(self.config.phonemizer, self.config.phoneme_id_map)
        self.scripts = scripts_for(self.config.language)
        self.alphabet = self.phonemizer.alphabet
        self.sample_rate = self.config.sample_rate
        t0 = time.perf_counter()
        self.session, self.provider = voice_session(pack, settings)
        self.load_seconds = time.perf_counter() - t0
        inputs = {i.name: i for i in self.session.get_inputs()}
        missing = {"input", "input_lengths", "scales"} - set(inputs)
        if missing:
            raise PackFormatError(f"Pack '{pack.name}': the voice graph lacks the inputs {sorted(missing)}.")
        self.has_sid = "sid" in inputs
        self.noise_inputs = {n: tuple(d if isinstance(d, int) else 1 for d in i.shape) for n, i in inputs.items() if n.startswith("noise_")}
        self.seedable = bool(self.noise_inputs)
        self.output_name = self.session.get_outputs()[0].name

    def speaker_names(self) -> list[str]:
        return self.config.speaker_names()

    def speaker_id(self, speaker: int | str | None) -> int:
        cfg = self.config
        if speaker is None:
            return 0
        if isinstance(speaker, str) and not speaker.strip().lstrip("-").isdigit():
            if speaker not in cfg.speaker_id_map:
                names = cfg.speaker_names()
                shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
                raise RequestError(f"This voice has no speaker '{speaker[:60]}'. Speakers: {shown}.")
            return cfg.speaker_id_map[speaker]
        sid = int(speaker)
        if not 0 <= sid < cfg.num_speakers:
            raise RequestError(f"Speaker {sid} does not exist: this voice has {cfg.num_speakers} speaker(s) (0-{cfg.num_speakers - 1}).")
        return sid

    def scales(self, s: SynthesisSettings) -> np.ndarray:
        cfg = self.config
        noise = cfg.noise_scale * s.variation if s.noise_scale is None else s.noise_scale
        noise_w = cfg.noise_w * s.variation if s.noise_w is None else s.noise_w
        return np.array([noise, cfg.length_scale / s.speed, noise_w], dtype=np.float32)

    def synthesize_ids(self, ids: list[int], scales: np.ndarray, sid: int, rng: np.random.Generator) -> np.ndarray:
        feed: dict[str, np.ndarray] = {
            "input": np.asarray([ids], dtype=np.int64),
            "input_lengths": np.asarray([len(ids)], dtype=np.int64),
            "scales": scales,
        }
        if self.has_sid:
            feed["sid"] = np.asarray([sid], dtype=np.int64)
        for name, shape in self.noise_inputs.items():
            feed[name] = rng.standard_normal(shape, dtype=np.float32)
        if self.session is None:
            raise EngineError("This voice was unloaded while speaking; press Speak again.")
        try:
            out = self.session.run([self.output_name], feed)[0]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own RuntimeError types
            raise EngineError(f"The voice model failed on this sentence ({str(exc).splitlines()[0][:160]}).") from None
        audio = np.asarray(out, dtype=np.float32).reshape(-1)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1e-6:
            audio *= PEAK / peak
        return audio

    def phoneme_ids(self, sentence: str, missing: Counter) -> list[int]:
        return self.ids(self.phonemizer.phonemize(sentence), missing)

    def speakable(self, ids: list[int]) -> int:
        return self.ids.speakable(ids)

    def close(self) -> None:
        self.session = None



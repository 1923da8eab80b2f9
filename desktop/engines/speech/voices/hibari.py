"""A hibari voice (Apache-2.0, distilled from Kokoro-82M), registered for "hibari" packs.

hibari's acoustic model predicts a spectrum per 12.5 ms frame; its own numpy DSP turns
that into a 24 kHz waveform, adding noise from a generator we pass in - so a seed repeats
a clip exactly, and "variation" scales that noise. Its grapheme-to-phoneme front end
(lexicons, a tagger and a small OOV network, no espeak) comes from the ``hibari-tts``
package, which works fully offline for the bundled "heart" voice; the pack holds the
acoustic model and its phoneme vocabulary.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import numpy as np

from desktop.engines.config_limits import bounded_int, bounded_len
from desktop.engines.errors import EngineError, PackFormatError
from desktop.engines.packs.pack import Pack
from desktop.engines.providers import RuntimeSettings
from desktop.engines.speech.sentences import scripts_for
from desktop.engines.speech.synthesis import SynthesisSettings
from desktop.engines.speech.voice_session import voice_session
from desktop.engines.speech.voices import register_voice
from desktop.engines.speech.voices.vits import PEAK, VoiceConfig

MAX_PHONEMES = 400  # a safety net for the model's context; sentences are <= 300 characters


class _ScaledNoise:
    """A numpy Generator stand-in whose normal draws are scaled (the 'variation')."""

    def __init__(self, rng: np.random.Generator, scale: float):
        self.rng, self.scale = rng, scale

    def standard_normal(self, shape, dtype=np.float32):
        return self.rng.standard_normal(shape, dtype=dtype) * dtype(self.scale)


@register_voice("hibari")
class HibariVoice:
    def __init__(self, pack: Pack, settings: RuntimeSettings):
        try:
            from hibari import dsp
            from hibari.g2p import G2P
        except ImportError:
            raise EngineError("This voice needs the hibari-tts package (pip install hibari-tts; scripts/setup installs it).") from None
        self.pack = pack
        cfg = pack.config
        try:
            self.vocab: dict[str, int] = json.loads(pack.file_with_role("vocab").read_text(encoding="utf-8"))
            bounded_len(self.vocab, "vocab", pack.name, "the phoneme vocabulary")
            self.config = VoiceConfig(
                sample_rate=bounded_int(cfg["sample_rate"], "sample_rate", pack.name),
                phonemizer=dict(cfg["phonemizer"]),
                phoneme_id_map={k: [bounded_int(v, "phoneme_id", pack.name, "a phoneme id")] for k, v in self.vocab.items()},
                id_style="plain",
                language=str(cfg.get("language", "en_US")),
                noise_scale=1.0,
                noise_w=1.0,
            )
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise PackFormatError(f"Pack '{pack.name}' has an unusable hibari config ({exc}).") from None
        self._dsp = dsp
        self.g2p = G2P(british=bool(self.config.phonemizer.get("british", False)))
        self.scripts = scripts_for(self.config.language)
        self.alphabet = None  # the G2P front end reads any English text
        self.sample_rate = self.config.sample_rate
        self.seedable = True
        t0 = time.perf_counter()
        self.session, self.provider = voice_session(pack, settings)
        self.load_seconds = time.perf_counter() - t0

    def speaker_names(self) -> list[str]:
        return self.config.speaker_names()

    def speaker_id(self, speaker) -> int:
        return 0

    def scales(self, s: SynthesisSettings) -> np.ndarray:
        noise = s.variation if s.noise_scale is None else s.noise_scale
        return np.array([noise, 1.0 / s.speed, noise], dtype=np.float32)

    def phoneme_ids(self, sentence: str, missing: Counter) -> list[int]:
        phonemes = self.g2p(sentence) or ""
        ids = [0]
        for ch in phonemes:
            if ch in self.vocab:
                ids.append(self.vocab[ch])
            else:
                missing[ch] += 1
        return ids + [0]

    def speakable(self, ids: list[int]) -> int:
        return max(len(ids) - 2, 0)  # without the framing 0 at each end

    def synthesize_ids(self, ids: list[int], scales: np.ndarray, sid: int, rng: np.random.Generator) -> np.ndarray:
        noise = _ScaledNoise(rng, float(scales[0]))
        parts = []
        body = ids[1:-1]
        for start in range(0, max(len(body), 1), MAX_PHONEMES):  # the model's context limit
            piece = [0, *body[start : start + MAX_PHONEMES], 0]
            try:
                out = self.session.run(None, {"ids": np.asarray([piece], dtype=np.int64), "speed": np.asarray([1.0 / float(scales[1])], dtype=np.float32)})
            except Exception as exc:  # noqa: BLE001
                raise EngineError(f"The voice model failed on this sentence ({str(exc).splitlines()[0][:160]}).") from None
            parts.append(self._dsp.synth(*(o[0] for o in out), noise))
        audio = np.concatenate(parts).astype(np.float32)
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak > 1.0:  # hibari's level is already right; only prevent clipping
            audio *= PEAK / peak
        return audio

    def close(self) -> None:
        self.session = None

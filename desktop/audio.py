"""Audio out (Qt-free): optional streaming playback (clips are saved by desktop.outputs).

sounddevice is imported lazily and every failure becomes a reason a person can read:
a machine without PortAudio or without an output device still synthesises and saves.
A voice whose sample rate the device refuses is resampled to the device's own rate; only
if that fails too is playback refused, with the rates named.
"""

from __future__ import annotations

import collections
import logging
import threading

import numpy as np

from desktop.engines.errors import AtelierError

log = logging.getLogger(__name__)


class PlaybackUnavailable(AtelierError):
    title = "Cannot play audio"


def _sounddevice():
    try:
        import sounddevice
    except OSError as exc:  # the module is there, PortAudio is not
        raise PlaybackUnavailable(f"Audio playback needs the PortAudio library, which is not installed ({exc}). Clips can still be saved as WAV.") from None
    except ImportError:
        raise PlaybackUnavailable("Audio playback needs the sounddevice package (pip install sounddevice). Clips can still be saved as WAV.") from None
    return sounddevice


def resample(samples: np.ndarray, src: int, dst: int) -> np.ndarray:
    """Linear-interpolation resampling: enough for speech playback at a device's rate."""
    if src == dst or samples.size == 0:
        return samples
    n = int(round(samples.size * dst / src))
    return np.interp(np.linspace(0, samples.size - 1, n), np.arange(samples.size), samples).astype(np.float32)


def output_rate(sample_rate: int, sd=None) -> int:
    """The rate to open the device at: the voice's, or the device's default if it refuses."""
    sd = sd or _sounddevice()
    try:
        device = sd.query_devices(kind="output")
    except Exception as exc:  # noqa: BLE001 - PortAudioError and ValueError alike
        raise PlaybackUnavailable(f"No audio output device was found ({exc}). Clips can still be saved as WAV.") from None
    try:
        sd.check_output_settings(samplerate=sample_rate, channels=1, dtype="float32")
        return sample_rate
    except Exception as first:  # noqa: BLE001
        fallback = int(device.get("default_samplerate") or 0) if isinstance(device, dict) else 0
        if fallback and fallback != sample_rate:
            try:
                sd.check_output_settings(samplerate=fallback, channels=1, dtype="float32")
                log.info("device refuses %d Hz; resampling to %d Hz", sample_rate, fallback)
                return fallback
            except Exception:  # noqa: BLE001
                pass
        raise PlaybackUnavailable(f"The audio device cannot play {sample_rate:,} Hz audio ({first}). Save the clip as WAV instead.") from None


class StreamPlayer:
    """Plays chunks as they arrive on PortAudio's thread; ``stop()`` silences at once.

    ``feed`` may be called before the previous chunk finished: samples queue up. The
    position in samples (at the voice's rate) lets a UI follow along.
    """

    def __init__(self, sample_rate: int, sd=None):
        self._sd = sd or _sounddevice()
        self.sample_rate = sample_rate
        self.device_rate = output_rate(sample_rate, self._sd)
        self._queue: collections.deque[np.ndarray] = collections.deque()
        self._lock = threading.Lock()
        self._played = 0
        self._closed = False
        self.drained = threading.Event()
        self.drained.set()
        try:
            self._stream = self._sd.OutputStream(samplerate=self.device_rate, channels=1, dtype="float32", callback=self._callback)
            self._stream.start()
        except Exception as exc:  # noqa: BLE001
            raise PlaybackUnavailable(f"Could not open the audio device ({exc}).") from None

    def feed(self, samples: np.ndarray) -> None:
        data = resample(np.asarray(samples, dtype=np.float32), self.sample_rate, self.device_rate)
        with self._lock:
            self._queue.append(data)
            self.drained.clear()

    @property
    def position_seconds(self) -> float:
        return self._played / self.device_rate

    def _callback(self, outdata, frames, _time, _status) -> None:
        out = outdata[:, 0]
        filled = 0
        with self._lock:
            while filled < frames and self._queue:
                head = self._queue[0]
                take = min(frames - filled, head.size)
                out[filled : filled + take] = head[:take]
                filled += take
                if take == head.size:
                    self._queue.popleft()
                else:
                    self._queue[0] = head[take:]
            if not self._queue:
                self.drained.set()
        out[filled:] = 0.0
        self._played += filled

    def stop(self) -> None:
        with self._lock:
            self._queue.clear()
            self.drained.set()
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # noqa: BLE001 - closing a dead device is not the user's problem
                log.debug("closing audio stream failed", exc_info=True)

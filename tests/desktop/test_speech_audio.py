"""Audio out without a sound card: the device is a stand-in object with sounddevice's API
(the engine and the player are real); saving never needs a device."""

from __future__ import annotations

import numpy as np
import pytest

from desktop.audio import PlaybackUnavailable, StreamPlayer, output_rate, resample


class FakeDevice:
    """sounddevice's surface: query_devices, check_output_settings, OutputStream."""

    def __init__(self, rates=(48000,), default=48000, present=True):
        self.rates, self.default, self.present = set(rates), default, present
        self.streams = []

    def query_devices(self, kind=None):
        if not self.present:
            raise RuntimeError("Error querying device -1")
        return {"name": "fake", "default_samplerate": float(self.default)}

    def check_output_settings(self, samplerate=None, **_):
        if samplerate not in self.rates:
            raise RuntimeError(f"Invalid sample rate {samplerate}")

    def OutputStream(self, samplerate, channels, dtype, callback):  # noqa: N802 - sounddevice's name
        device = self

        class Stream:
            def __init__(self):
                self.samplerate, self.callback, self.active = samplerate, callback, False
                device.streams.append(self)

            def start(self):
                self.active = True

            def abort(self):
                self.active = False

            def close(self):
                pass

        return Stream()


def test_a_rate_the_device_cannot_play_is_resampled_or_refused_clearly():
    assert output_rate(22050, FakeDevice(rates=(22050, 48000))) == 22050
    assert output_rate(22050, FakeDevice(rates=(48000,))) == 48000  # resampled for playback
    with pytest.raises(PlaybackUnavailable, match="cannot play 22,050 Hz"):
        output_rate(22050, FakeDevice(rates=(), default=22050))
    with pytest.raises(PlaybackUnavailable, match="No audio output device"):
        output_rate(22050, FakeDevice(present=False))


def test_stream_player_plays_queued_chunks_at_the_device_rate_and_stops_at_once():
    device = FakeDevice(rates=(44100,), default=44100)
    player = StreamPlayer(22050, sd=device)
    stream = device.streams[0]
    assert stream.samplerate == 44100 and stream.active
    player.feed(np.ones(100, np.float32))
    player.feed(np.full(100, 0.5, np.float32))
    out = np.zeros((500, 1), np.float32)
    stream.callback(out, 500, None, None)
    assert np.allclose(out[:200, 0], 1.0) and np.allclose(out[200:400, 0], 0.5) and np.all(out[400:] == 0)
    assert player.drained.is_set() and player.position_seconds == pytest.approx(400 / 44100)
    player.feed(np.ones(1000, np.float32))
    player.stop()
    assert player.drained.is_set() and not stream.active


def test_resample_keeps_duration():
    x = np.sin(np.linspace(0, 20, 22050)).astype(np.float32)
    y = resample(x, 22050, 48000)
    assert y.size == 48000 and y.dtype == np.float32 and abs(float(y.max()) - float(x.max())) < 1e-3

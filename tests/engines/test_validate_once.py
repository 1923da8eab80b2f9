"""One request, one check: the caller that first holds a request validates it, the engine
does not repeat it for the unchanged request, and the image memory check runs once."""

from __future__ import annotations

import dataclasses

import pytest

from desktop.engines.errors import RequestError
from desktop.engines.image.capabilities import Capabilities
from desktop.engines.image.engine import ImageEngine, ImageRequest
from desktop.engines.packs.pack import load_pack
from desktop.engines.providers import RuntimeSettings
from desktop.engines.text.engine import ChatRequest, TextEngine
from desktop.engines.text.sampling import SamplingSettings
from tests.tiny_latent import tiny_latent_pack


def _count(monkeypatch, cls, name="check"):
    calls = []
    real = getattr(cls, name)

    def counting(self, *a, **kw):
        calls.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(cls, name, counting)
    return calls


def test_a_chat_message_is_checked_once(monkeypatch, tiny_packs):
    engine = TextEngine(load_pack(tiny_packs["llama"]), RuntimeSettings(provider="cpu"))
    try:
        calls = _count(monkeypatch, ChatRequest)
        request = ChatRequest([{"role": "user", "content": "hi"}], max_tokens=2, sampling=SamplingSettings(temperature=0.0))
        request.validate()  # the window's job slot, a command or the server: early
        request.validate()
        list(engine.generate(request))
        assert len(calls) == 1
        request.max_tokens = 0  # changed after its check: the engine checks it again
        with pytest.raises(RequestError, match="Max tokens"):
            list(engine.generate(request))
        assert len(calls) == 2
        fresh = dataclasses.replace(request, max_tokens=2)
        list(engine.generate(fresh))  # nobody checked this one: the engine does
        assert len(calls) == 3
    finally:
        engine.close()


def test_capabilities_are_a_typed_value():
    caps = Capabilities(sizes=[[28, 28]], classes=["a", "b"])
    assert caps.sizes == ((28, 28),) and caps.default_size == (28, 28) and caps.classes == ("a", "b")
    assert Capabilities(free_size=True).default_size == (512, 512) and Capabilities().sizes == ((512, 512),)
    with pytest.raises(TypeError):
        Capabilities(colour=True)  # a misspelt capability is an error, not a silent key
    with pytest.raises(dataclasses.FrozenInstanceError):
        caps.prompt = True
    with pytest.raises(RequestError, match="28×28 only"):
        ImageRequest(width=32, height=32, capabilities=caps).validate()


@pytest.fixture(scope="module")
def latent_engine(tmp_path_factory):
    engine = ImageEngine(load_pack(tiny_latent_pack(tmp_path_factory.mktemp("latent") / "pack")), RuntimeSettings(provider="cpu"))
    yield engine
    engine.close()


@pytest.mark.parametrize("with_capabilities", [True, False], ids=["studio", "command"])
def test_one_image_checks_its_request_and_memory_once(monkeypatch, latent_engine, with_capabilities):
    import desktop.engines.image.engine as image_engine

    memory = []
    monkeypatch.setattr(image_engine, "available_memory_bytes", lambda: memory.append(1) or 2**40)
    checks = _count(monkeypatch, ImageRequest)
    caps = latent_engine.capabilities if with_capabilities else None
    request = ImageRequest(seed=1, class_label="square", capabilities=caps)
    request.validate()  # the studio (with the pack's capabilities) or a command (without)
    images = [ev for ev in latent_engine.generate(request) if type(ev).__name__ == "ImageResult"]
    # with the pack's capabilities (the studio) memory is checked once, by the pipeline's
    # estimate; a command also refuses a hopeless size roughly before it loads a model
    assert len(images) == 1 and len(checks) == 1 and len(memory) == (1 if with_capabilities else 2)
    if not with_capabilities:  # the pack's own rules still apply to a command's request
        with pytest.raises(RequestError, match="Unknown class"):
            list(latent_engine.generate(ImageRequest(seed=1, class_label="hexagon")))

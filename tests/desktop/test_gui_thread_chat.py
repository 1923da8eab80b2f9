"""The chat keeps the GUI thread free while a reply streams into a transcript that already
holds a 20,000-character message, and while that transcript is resized: only the streaming
bubble re-renders, at most every ~100 ms. A 10 ms QTimer on the GUI thread records its
longest gap; the reply comes from a real tiny llama through the real studio."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication

from tests.desktop.test_chat import ctx, make_studio  # noqa: F401 - the fixtures
from tests.desktop.test_responsiveness import GuiGaps
from tests.engines.test_prefill import gap_limit

PARA = "Some **bold** words, a `code span`, and a [link](https://example.org) in a long paragraph. " * 6


def long_chat(qtbot, studio):
    """A stored chat with a 20,000-character pasted question and a long markdown answer."""
    conv = studio.store.create("long", context_policy="rolling_window")  # the tiny model has 256 tokens
    text = "\n\n".join([PARA] * 60)[:20_000]
    studio.store.add_message(conv.id, "user", text)
    studio.store.add_message(conv.id, "assistant", "- " + "\n- ".join([PARA[:120]] * 160)[:20_000])
    studio.resize(1100, 800)
    studio.show()
    studio._load_conversations(select=conv.id)
    qtbot.waitUntil(lambda: len(studio.transcript.bubbles) == 2, timeout=10_000)
    QApplication.processEvents()
    return conv


def test_streaming_next_to_a_long_message_keeps_the_gui_ticking(qtbot, ctx):  # noqa: F811
    studio = make_studio(qtbot, ctx)
    long_chat(qtbot, studio)
    studio.panel.max_tokens.setValue(100)
    with qtbot.waitSignal(studio.slot.loaded, timeout=60_000):
        studio.slot.load(studio.panel.current_model())
    studio.slot.engine.eos_ids = set()  # the whole reply streams
    renders = []
    studio.input.setPlainText("Summarise that, please.")
    with GuiGaps() as gaps, qtbot.waitSignal(studio.reply_finished, timeout=120_000) as done:
        studio.send()
        qtbot.waitUntil(lambda: len(studio.transcript.bubbles) == 4, timeout=60_000)
        reply = studio.transcript.bubbles[-1]
        reply.rendered.connect(lambda: renders.append(True))
    assert done.args[0].done
    reply = studio.transcript.bubbles[-1]
    stored = studio.store.messages(studio.conversation_id)[-1]
    assert stored.role == "assistant" and stored.content == reply.text and len(reply.text) > 100
    assert 1 <= len(renders) <= 40  # throttled: 100 tokens never mean 100 renders
    studio.shutdown()
    limit = gap_limit()
    assert gaps.longest < limit, f"the GUI timer waited {gaps.longest * 1000:.0f} ms while streaming (limit {limit * 1000:.0f} ms)"


def test_resizing_a_long_chat_keeps_the_gui_ticking(qtbot, ctx):  # noqa: F811
    studio = make_studio(qtbot, ctx)
    long_chat(qtbot, studio)
    with GuiGaps() as gaps:
        for width in (900, 1300, 1000, 1400, 800, 1200):
            studio.resize(width, 800)
            qtbot.wait(30)  # the resize is laid out and painted; the timer ticks between them
    studio.shutdown()
    limit = gap_limit()
    assert gaps.longest < limit, f"the GUI timer waited {gaps.longest * 1000:.0f} ms on a resize (limit {limit * 1000:.0f} ms)"

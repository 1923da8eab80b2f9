"""Regenerate keeps the earlier versions of a reply reachable ("‹ 2/3 ›" in its bubble); the
version shown is the one stored as the message, so the model sees what the person sees."""

from __future__ import annotations

from desktop.ui.chat_versions import add_version, choose_version, position, versions_of
from tests.desktop.test_chat import ctx, make_studio  # noqa: F401 - the fixtures
from tests.desktop.test_chat_work import loaded


def test_versions_keep_every_reply_and_an_edit_of_the_shown_one():
    stats = add_version("first", {"seed": 1}, "second", {"seed": 2})
    assert position(stats) == (1, 2) and stats["seed"] == 2
    content, back = choose_version("second", stats, 0)
    assert (content, back["seed"], position(back)) == ("first", 1, (0, 2))
    # the person edits the version shown; switching away and back keeps the edit
    edited = dict(back, edited=True)
    content, later = choose_version("first, edited", edited, 1)
    assert content == "second" and [v["content"] for v in versions_of(content, later)] == ["first, edited", "second"]
    assert position({"seed": 3}) is None  # a reply never regenerated shows no switch


def test_regenerate_then_switch_back_to_the_first_reply(qtbot, ctx):  # noqa: F811
    studio = loaded(qtbot, make_studio(qtbot, ctx))
    studio.panel.max_tokens.setValue(6)
    studio.panel.temperature.setValue(1.0)
    conv = studio.conversation_id
    studio.input.setPlainText("Tell me something")
    with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
        studio.send()
    first = studio.store.messages(conv)[-1]
    for _ in range(2):
        with qtbot.waitSignal(studio.reply_finished, timeout=30_000):
            studio.transcript.bubbles[-1].action_buttons["regenerate"].click()
    saved = studio.store.messages(conv)
    assert [m.role for m in saved] == ["user", "assistant"]  # versions are not extra messages
    reply = studio.transcript.bubbles[-1]
    assert reply.versions == (2, 3) and reply.version_label.text() == "3/3"
    assert reply.version_buttons["older"].isEnabled() and not reply.version_buttons["newer"].isEnabled()
    third = saved[-1].content

    for _ in range(2):
        studio.transcript.bubbles[-1].version_buttons["older"].click()
    shown = studio.store.messages(conv)[-1]
    assert shown.content == first.content and shown.stats["seed"] == first.stats["seed"]
    assert studio.transcript.bubbles[-1].text == first.content and studio.transcript.bubbles[-1].version_label.text() == "1/3"
    assert studio._conversation_messages(conv)[-1]["content"] == first.content  # what the model sees next

    studio.transcript.bubbles[-1].version_buttons["newer"].click()
    studio.transcript.bubbles[-1].version_buttons["newer"].click()
    assert studio.store.messages(conv)[-1].content == third
    studio.shutdown()

"""Chat history in SQLite under the per-user data folder.

Durability first: WAL journal with synchronous=FULL, and each message is its own
transaction; a reply being written is checkpointed every few tokens, so a kill -9 in the
middle of a reply loses at most its last few tokens. Each conversation also keeps its unsent draft and
its context policy, so neither is lost by switching chats or restarting. Qt-free; used from
the GUI thread only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop.engines.packs.library import data_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    stats TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, id);
"""
# Columns added after the first release: (name, definition). Older files gain them on open.
ADDED_COLUMNS = (
    ("draft", "TEXT NOT NULL DEFAULT ''"),
    ("context_policy", "TEXT NOT NULL DEFAULT 'stop'"),
)
CONVERSATION_COLUMNS = "id, title, system_prompt, model, created, updated, draft, context_policy"


@dataclass
class Conversation:
    id: int
    title: str
    system_prompt: str
    model: str
    created: float
    updated: float
    draft: str = ""
    context_policy: str = "stop"


@dataclass
class Message:
    id: int
    conversation_id: int
    role: str
    content: str
    stats: dict[str, Any]
    created: float


class ChatStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else data_dir() / "history.sqlite3"
        self.db = sqlite3.connect(str(self.path), isolation_level=None)  # autocommit; explicit transactions
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.executescript(SCHEMA)
        have = {row[1] for row in self.db.execute("PRAGMA table_info(conversations)")}
        for name, definition in ADDED_COLUMNS:
            if name not in have:
                self.db.execute(f"ALTER TABLE conversations ADD COLUMN {name} {definition}")
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.db.close()

    # -- conversations --------------------------------------------------------------------
    def create(self, title: str = "New chat", system_prompt: str = "", model: str = "", context_policy: str = "stop") -> Conversation:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO conversations (title, system_prompt, model, created, updated, context_policy) VALUES (?, ?, ?, ?, ?, ?)",
            (title, system_prompt, model, now, now, context_policy),
        )
        return self.get(cur.lastrowid)

    def get(self, conversation_id: int) -> Conversation:
        row = self.db.execute(f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
        if row is None:
            raise KeyError(conversation_id)
        return Conversation(*row)

    def conversations(self) -> list[Conversation]:
        rows = self.db.execute(f"SELECT {CONVERSATION_COLUMNS} FROM conversations ORDER BY updated DESC, id DESC").fetchall()
        return [Conversation(*r) for r in rows]

    def rename(self, conversation_id: int, title: str) -> None:
        title = " ".join(title.split())[:200] or "Untitled"
        self.db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id))

    def set_system_prompt(self, conversation_id: int, prompt: str) -> None:
        self.db.execute("UPDATE conversations SET system_prompt = ? WHERE id = ?", (prompt, conversation_id))

    def set_model(self, conversation_id: int, model: str) -> None:
        self.db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, conversation_id))

    def exists(self, conversation_id: int) -> bool:
        return self.db.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is not None

    def set_draft(self, conversation_id: int, draft: str) -> None:
        self.db.execute("UPDATE conversations SET draft = ? WHERE id = ?", (draft, conversation_id))

    def set_context_policy(self, conversation_id: int, policy: str) -> None:
        self.db.execute("UPDATE conversations SET context_policy = ? WHERE id = ?", (policy, conversation_id))

    def delete(self, conversation_id: int) -> None:
        self.db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))

    def prune(self, older_than_days: int) -> int:
        """History retention: drop conversations untouched for that many days (0 keeps all)."""
        if older_than_days <= 0:
            return 0
        cutoff = time.time() - older_than_days * 86400
        return self.db.execute("DELETE FROM conversations WHERE updated < ?", (cutoff,)).rowcount

    # -- messages ------------------------------------------------------------------------------
    def add_message(
        self, conversation_id: int, role: str, content: str, stats: dict[str, Any] | None = None, *, replaces: int | None = None, clear_draft: bool = False
    ) -> Message:
        """Append a message in one transaction with the conversation's timestamp; ``replaces``
        (a regenerated reply) deletes that message in the same transaction, and ``clear_draft``
        (a sent message) empties the draft it came from, so neither is ever lost half-way."""
        now = time.time()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if replaces is not None:
                self.db.execute("DELETE FROM messages WHERE id = ? AND conversation_id = ?", (replaces, conversation_id))
            cur = self.db.execute(
                "INSERT INTO messages (conversation_id, role, content, stats, created) VALUES (?, ?, ?, ?, ?)",
                (conversation_id, role, content, json.dumps(stats or {}), now),
            )
            self.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id))
            if clear_draft:
                self.db.execute("UPDATE conversations SET draft = '' WHERE id = ?", (conversation_id,))
        return Message(cur.lastrowid, conversation_id, role, content, stats or {}, now)

    def update_message(self, message_id: int, content: str, stats: dict[str, Any], *, replaces: int | None = None) -> None:
        """Rewrite a reply stored while it was being written (a checkpoint, or its final text);
        ``replaces`` as in ``add_message``, in the same transaction."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if replaces is not None:
                self.db.execute("DELETE FROM messages WHERE id = ?", (replaces,))
            self.db.execute("UPDATE messages SET content = ?, stats = ? WHERE id = ?", (content, json.dumps(stats), message_id))

    def edit_message(self, message_id: int, content: str) -> None:
        row = self.db.execute("SELECT stats FROM messages WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            return
        stats = dict(_loads(row[0]), edited=True)
        self.db.execute("UPDATE messages SET content = ?, stats = ? WHERE id = ?", (content, json.dumps(stats), message_id))

    def messages(self, conversation_id: int) -> list[Message]:
        rows = self.db.execute(
            "SELECT id, conversation_id, role, content, stats, created FROM messages WHERE conversation_id = ? ORDER BY id", (conversation_id,)
        ).fetchall()
        return [Message(r[0], r[1], r[2], r[3], _loads(r[4]), r[5]) for r in rows]

    def delete_message(self, message_id: int) -> None:
        self.db.execute("DELETE FROM messages WHERE id = ?", (message_id,))

    # -- export ------------------------------------------------------------------------------
    def to_markdown(self, conversation_id: int, provenance: dict[str, Any] | None = None) -> str:
        """The conversation as Markdown with a front-matter block saying what made it."""
        conv = self.get(conversation_id)
        lines = ["---"]
        front = {"title": conv.title, "model": conv.model, "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        front.update(provenance or {})
        for key, value in front.items():
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
        lines += ["---", "", f"# {conv.title}", ""]
        if conv.system_prompt:
            lines += ["**System:** " + conv.system_prompt, ""]
        for m in self.messages(conversation_id):
            who = {"user": "You", "assistant": "Assistant", "system": "System"}[m.role]
            lines += [f"## {who}", "", m.content, ""]
        return "\n".join(lines)


def _loads(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}

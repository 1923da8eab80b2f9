"""SIGKILL in the middle of chat-history writes, repeatedly; used by the durability test
and bench/robustness.py.

A child process opens the real ``ChatStore`` and writes messages (some large, so a kill
lands inside page writes) as fast as it can, printing each message's id and digest only
after ``add_message`` returned - i.e. after the transaction committed. The parent
SIGKILLs it at a random moment, reopens the database, and checks that SQLite's
integrity check passes and that every acknowledged message is there, byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import hashlib, random, sys
sys.path.insert(0, sys.argv[3])
from desktop.outputs.chat_store import ChatStore
store = ChatStore(__import__("pathlib").Path(sys.argv[1]))
rng = random.Random(int(sys.argv[2]))
conv = store.create(f"round {sys.argv[2]}")
print("ready", flush=True)
k = 0
while True:
    size = rng.choice((40, 400, 4000, 60000))
    content = f"{sys.argv[2]}:{k}:" + "".join(rng.choice("abcdefghij ") for _ in range(size))
    msg = store.add_message(conv.id, "user" if k % 2 == 0 else "assistant", content, {"k": k})
    print(msg.id, hashlib.sha256(content.encode()).hexdigest(), flush=True)
    k += 1
"""


def kill_rounds(db: Path, rounds: int = 20, seed: int = 0) -> dict:
    """Run ``rounds`` write-and-kill rounds on ``db``; return what was checked."""
    rng = random.Random(seed)
    acked: dict[int, str] = {}
    survived = dirty = 0
    problems: list[str] = []
    for r in range(rounds):
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(r), str(ROOT)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        target = rng.randint(3, 40)
        got = 0
        while got < target:
            line = proc.stdout.readline()
            if not line:
                break
            mid, digest = line.split()
            acked[int(mid)] = digest
            got += 1
        time.sleep(rng.random() * 0.02)  # land somewhere inside the next write
        os.kill(proc.pid, signal.SIGKILL)
        for line in proc.stdout:  # acknowledgements written before the kill still count
            fields = line.split()
            # only a whole line acknowledges a commit: the kill can land inside the child's
            # print, and a fresh-clone run once read back a line cut short there
            if line.endswith("\n") and len(fields) == 2:
                acked[int(fields[0])] = fields[1]
        proc.wait()
        wal = db.with_name(db.name + "-wal")
        if wal.is_file() and wal.stat().st_size > 0:
            dirty += 1  # killed with a write-ahead log that reopening must recover
        problem = check(db, acked)
        if problem:
            problems.append(f"round {r}: {problem}")
        else:
            survived += 1
    return {"rounds": rounds, "survived": survived, "acknowledged": len(acked), "killed_with_wal": dirty, "problems": problems}


def check(db: Path, acked: dict[int, str]) -> str:
    """'' when the database opens, passes integrity_check and holds every acked message."""
    sys.path.insert(0, str(ROOT))
    from desktop.outputs.chat_store import ChatStore

    try:
        store = ChatStore(db)  # the app's own open path (WAL recovery happens here)
    except sqlite3.Error as exc:
        return f"database does not open: {exc}"
    try:
        verdict = store.db.execute("PRAGMA integrity_check").fetchone()[0]
        if verdict != "ok":
            return f"integrity_check: {verdict}"
        rows = dict(store.db.execute("SELECT id, content FROM messages").fetchall())
        missing = [m for m in acked if m not in rows]
        if missing:
            return f"{len(missing)} committed message(s) lost, e.g. id {missing[0]}"
        wrong = [m for m, d in acked.items() if hashlib.sha256(rows[m].encode()).hexdigest() != d]
        if wrong:
            return f"{len(wrong)} committed message(s) changed, e.g. id {wrong[0]}"
        convs = store.conversations()
        for c in convs:
            store.messages(c.id)  # every conversation still reads through the app's API
    finally:
        store.close()
    return ""

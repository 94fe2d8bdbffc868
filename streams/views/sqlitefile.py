"""The one way kronwheel opens a SQLite file that several processes share.

The history store and the API's read model live in the same file under the
data directory; dispatchers and API processes all open it. WAL lets readers
run beside the one writer; the 30 s busy timeout rides out another process's
write. NORMAL sync keeps WAL durable across a process crash; only an OS crash
can lose the last transactions, which replaying the topics recovers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def open_shared_file(path: Path) -> sqlite3.Connection:
    """A connection any thread may use; callers serialise its use with a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


@contextmanager
def locked_transaction(conn: sqlite3.Connection, lock: threading.Lock) -> Iterator[None]:
    """One write transaction, taken at once (IMMEDIATE: no upgrade deadlock between
    processes), with this process's threads kept out by the lock."""
    with lock:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30.0
WAL_RETRY_S = 0.05


def open_shared_file(path: Path) -> sqlite3.Connection:
    """A connection any thread may use; callers serialise its use with a lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
    )
    _set_wal(conn)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _set_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL, retrying while another process holds the file. On a file still
    in rollback mode with a writer in it (two processes opening a new data
    directory together), SQLite refuses the switch with "database is locked" at
    once, without waiting out the busy timeout: a dispatcher failed to start so
    in test_dispatcher's SIGKILL test."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(WAL_RETRY_S)


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

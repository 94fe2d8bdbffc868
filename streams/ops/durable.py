"""The durable copy of what ``kronwheel dev``'s in-memory broker holds: one SQLite file.

The embedded broker keeps nothing across a stop, so ``kronwheel dev`` keeps
its own copy of the records that still matter (docs/dev.md), in
``<data dir>/kept.sqlite3``:

* ``tasks.state``: the latest value of every live task (a record superseded by
  a later one of its key, or a tombstone, is dropped once no consumer needs it);
* ``tasks.commands``, ``tasks.due``, ``tasks.results``, ``tasks.dead``: every
  record some consumer has not yet committed past (the processors' group, the
  dispatchers' group, the API's projector);
* the consumers' committed offsets as of the last prune, so a restore can tell
  each consumer where to resume on the fresh broker.

A record is identified by (topic, partition, offset): the keeper copying it
and the API writing it before its 202 (:func:`journal_messages`) insert the
same row once. Offsets are those of the current broker; a restore produces the
kept records again and renumbers them to their new offsets (:meth:`renumber`).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from streams.views.sqlitefile import locked_transaction, open_shared_file

FILE_NAME = "kept.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS kept (
    topic TEXT NOT NULL,
    part INTEGER NOT NULL,
    off INTEGER NOT NULL,
    key BLOB,
    value BLOB,
    headers BLOB,
    ts INTEGER NOT NULL,
    live INTEGER NOT NULL DEFAULT 0,   -- the latest value of its key (tasks.state only)
    PRIMARY KEY (topic, part, off)
);
CREATE INDEX IF NOT EXISTS kept_by_key ON kept (topic, part, key, off);
-- What a prune may delete: everything but the live states (millions of them).
CREATE INDEX IF NOT EXISTS kept_not_live ON kept (topic, part, off) WHERE live = 0;
CREATE TABLE IF NOT EXISTS positions (
    topic TEXT NOT NULL, part INTEGER NOT NULL, next_off INTEGER NOT NULL,
    PRIMARY KEY (topic, part)
);
-- tasks.state is restored only below the cut: see streams.ops.keeper.PruneCycle.
CREATE TABLE IF NOT EXISTS state_cut (
    topic TEXT NOT NULL, part INTEGER NOT NULL, cut INTEGER NOT NULL,
    PRIMARY KEY (topic, part)
);
CREATE TABLE IF NOT EXISTS consumers (
    consumer TEXT NOT NULL, topic TEXT NOT NULL, part INTEGER NOT NULL,
    committed INTEGER NOT NULL,
    PRIMARY KEY (consumer, topic, part)
);
"""

Partition = tuple[str, int]


@dataclass(frozen=True)
class KeptRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] | None
    timestamp_ms: int


def encode_headers(headers: Sequence[tuple[str, bytes | None]] | None) -> bytes | None:
    if not headers:
        return None
    return orjson.dumps([[k, None if v is None else v.hex()] for k, v in headers])


def decode_headers(raw: bytes | None) -> list[tuple[str, bytes | None]] | None:
    if raw is None:
        return None
    return [(k, None if v is None else bytes.fromhex(v)) for k, v in orjson.loads(raw)]


def low_watermarks(
    readers: Mapping[str, Sequence[str]],
    committed: Mapping[tuple[str, str, int], int],
    partitions: Iterable[Partition],
) -> dict[Partition, int]:
    """Per partition, the smallest offset a reader of its topic still needs.

    ``readers`` maps a topic to the consumers that read it; a consumer with no
    committed offset on a partition needs it all (0).
    """
    lows = {}
    for topic, part in partitions:
        names = readers.get(topic, ())
        lows[(topic, part)] = min((committed.get((n, topic, part), 0) for n in names), default=0)
    return lows


def translate(old_offsets: Sequence[int], new_offsets: Sequence[int], committed: int) -> int:
    """Where a consumer committed at ``committed`` (an old offset) resumes after a restore.

    The kept records (sorted old offsets) were produced again at ``new_offsets``;
    the consumer resumes at the first of them at or past its old position, or
    after the last one when it had read them all.
    """
    rank = bisect.bisect_left(old_offsets, committed)
    if rank < len(new_offsets):
        return new_offsets[rank]
    return new_offsets[-1] + 1 if new_offsets else 0


class KeptLog:
    def __init__(self, path: Path, state_topic: str) -> None:
        self.path = path
        self.state_topic = state_topic
        self._conn = open_shared_file(path)
        self._lock = threading.Lock()
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        self._conn.close()

    # --- writes -------------------------------------------------------------------

    def store(self, records: Sequence[KeptRecord], positions: Mapping[Partition, int]) -> None:
        """Keep records and the reader's positions after them, in one transaction."""
        with locked_transaction(self._conn, self._lock):
            self._insert(records)
            self._conn.executemany(
                "INSERT OR REPLACE INTO positions (topic, part, next_off) VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in positions.items()],
            )

    def journal(self, records: Sequence[KeptRecord]) -> None:
        """Keep records another process just produced (the API, before its 202)."""
        with locked_transaction(self._conn, self._lock):
            self._insert(records)

    def _insert(self, records: Sequence[KeptRecord]) -> None:
        for r in records:
            state = r.topic == self.state_topic
            inserted = self._conn.execute(
                "INSERT OR IGNORE INTO kept (topic, part, off, key, value, headers, ts, live) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
                (
                    r.topic,
                    r.partition,
                    r.offset,
                    r.key,
                    r.value,
                    encode_headers(r.headers),
                    r.timestamp_ms,
                ),
            ).rowcount
            if state and inserted and r.key is not None:
                # Only the newest record of a key is the task's state.
                self._conn.execute(
                    "UPDATE kept SET live = 0 WHERE topic = ? AND part = ? AND key = ? "
                    "AND live = 1",
                    (r.topic, r.partition, r.key),
                )
                if r.value is not None:
                    self._conn.execute(
                        "UPDATE kept SET live = 1 WHERE topic = ? AND part = ? AND off = ?",
                        (r.topic, r.partition, r.offset),
                    )

    def prune(
        self,
        lows: Mapping[Partition, int],
        committed: Mapping[tuple[str, str, int], int],
        state_cut: Mapping[Partition, int],
    ) -> int:
        """Drop what every reader is past; remember the offsets and the state cut used.

        A state record is dropped only when it is below the cut too, and when a
        newer record of its key below the cut replaces it (or it is a tombstone):
        only state below the cut is ever restored, so what replaces a dropped
        record must be restorable.
        """
        with locked_transaction(self._conn, self._lock):
            dropped = 0
            for (topic, part), low in lows.items():
                if topic != self.state_topic:
                    dropped += self._conn.execute(
                        "DELETE FROM kept WHERE topic = ? AND part = ? AND off < ? AND live = 0",
                        (topic, part, low),
                    ).rowcount
                    continue
                cut = state_cut.get((topic, part), 0)
                dropped += self._conn.execute(
                    """DELETE FROM kept WHERE topic = ? AND part = ? AND off < ? AND live = 0
                       AND (value IS NULL OR EXISTS (
                           SELECT 1 FROM kept AS newer
                           WHERE newer.topic = kept.topic AND newer.part = kept.part
                             AND newer.key = kept.key AND newer.off > kept.off
                             AND newer.off < ?))""",
                    (topic, part, min(low, cut), cut),
                ).rowcount
            self._conn.execute("DELETE FROM consumers")
            self._conn.executemany(
                "INSERT INTO consumers (consumer, topic, part, committed) VALUES (?, ?, ?, ?)",
                [(c, t, p, o) for (c, t, p), o in committed.items()],
            )
            self._conn.executemany(
                "INSERT OR REPLACE INTO state_cut (topic, part, cut) VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in state_cut.items()],
            )
        return dropped

    def truncate_state(self) -> int:
        """Before a restore: drop the state at or past the cut, so what is restored is a
        state whose firings are all kept. The key's previous value becomes live again."""
        with locked_transaction(self._conn, self._lock):
            cuts = dict(
                ((t, p), c)
                for t, p, c in self._conn.execute("SELECT topic, part, cut FROM state_cut")
            )
            dropped = 0
            parts = self._conn.execute(
                "SELECT DISTINCT part FROM kept WHERE topic = ?", (self.state_topic,)
            ).fetchall()
            for (part,) in parts:
                cut = cuts.get((self.state_topic, part), 0)
                keys = self._conn.execute(
                    "SELECT DISTINCT key FROM kept WHERE topic = ? AND part = ? AND off >= ?",
                    (self.state_topic, part, cut),
                ).fetchall()
                dropped += self._conn.execute(
                    "DELETE FROM kept WHERE topic = ? AND part = ? AND off >= ?",
                    (self.state_topic, part, cut),
                ).rowcount
                self._conn.executemany(
                    """UPDATE kept SET live = 1 WHERE topic = ? AND part = ? AND key = ?
                       AND value IS NOT NULL AND off = (
                           SELECT max(off) FROM kept AS k WHERE k.topic = kept.topic
                           AND k.part = kept.part AND k.key = kept.key)""",
                    [(self.state_topic, part, key) for (key,) in keys],
                )
        return dropped

    def renumber(self, topic: str, part: int, old: Sequence[int], new: Sequence[int]) -> None:
        """After a restore: the kept records of a partition now live at ``new`` offsets."""
        if list(old) != sorted(old) or list(new) != sorted(new) or len(old) != len(new):
            raise ValueError(f"renumbering {topic}[{part}] needs two ascending lists of one size")
        pairs = list(zip(old, new, strict=True))
        with locked_transaction(self._conn, self._lock):
            if all(n <= o for o, n in pairs):
                # The usual case (a fresh broker numbers from 0): moved in ascending
                # order, no row lands on an offset another row still holds.
                self._conn.executemany(
                    "UPDATE kept SET off = ? WHERE topic = ? AND part = ? AND off = ?",
                    [(n, topic, part, o) for o, n in pairs if n != o],
                )
                return
            # Otherwise park every row on a negative offset first.
            self._conn.execute(
                "UPDATE kept SET off = -1 - off WHERE topic = ? AND part = ?", (topic, part)
            )
            self._conn.executemany(
                "UPDATE kept SET off = ? WHERE topic = ? AND part = ? AND off = ?",
                [(n, topic, part, -1 - o) for o, n in pairs],
            )

    def reset_positions(self, positions: Mapping[Partition, int]) -> None:
        """After a restore: where the keeper reads on the new broker; the cut is the end."""
        with locked_transaction(self._conn, self._lock):
            self._conn.execute("DELETE FROM state_cut")
            self._conn.executemany(
                "INSERT INTO state_cut (topic, part, cut) VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in positions.items() if t == self.state_topic],
            )
            self._conn.execute("DELETE FROM positions")
            self._conn.executemany(
                "INSERT INTO positions (topic, part, next_off) VALUES (?, ?, ?)",
                [(t, p, o) for (t, p), o in positions.items()],
            )

    # --- reads --------------------------------------------------------------------

    def positions(self) -> dict[Partition, int]:
        rows = self._conn.execute("SELECT topic, part, next_off FROM positions").fetchall()
        return {(t, p): o for t, p, o in rows}

    def committed(self) -> dict[tuple[str, str, int], int]:
        rows = self._conn.execute("SELECT consumer, topic, part, committed FROM consumers")
        return {(c, t, p): o for c, t, p, o in rows.fetchall()}

    def partitions(self) -> list[Partition]:
        rows = self._conn.execute("SELECT DISTINCT topic, part FROM kept ORDER BY topic, part")
        return [(t, p) for t, p in rows.fetchall()]

    def offsets(self, topic: str, part: int) -> list[int]:
        rows = self._conn.execute(
            "SELECT off FROM kept WHERE topic = ? AND part = ? ORDER BY off", (topic, part)
        )
        return [o for (o,) in rows.fetchall()]

    def records(self, topic: str, part: int) -> Iterator[KeptRecord]:
        """The kept records of a partition, oldest first (a cursor: memory stays flat)."""
        cursor = self._conn.cursor()
        cursor.execute(
            "SELECT off, key, value, headers, ts FROM kept WHERE topic = ? AND part = ? "
            "ORDER BY off",
            (topic, part),
        )
        while rows := cursor.fetchmany(5_000):
            for off, key, value, headers, ts in rows:
                yield KeptRecord(topic, part, off, key, value, decode_headers(headers), ts)

    def counts(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT topic, count(*) FROM kept GROUP BY topic").fetchall()
        return {t: n for t, n in rows}


def open_kept_log(data_dir: Path, state_topic: str) -> KeptLog:
    return KeptLog(data_dir / FILE_NAME, state_topic)


# Set by ``kronwheel dev`` for its API: the kept log to write commands to before a 202.
JOURNAL_ENV = "KRONWHEEL_DEV_KEPT_LOG"


class MessageJournal:
    """Writes produced commands (delivered confluent_kafka Messages) to the kept log."""

    def __init__(self, kept: KeptLog) -> None:
        self.kept = kept

    def __call__(self, messages: Sequence[Any]) -> None:
        records = []
        for m in messages:
            headers = m.headers()
            records.append(
                KeptRecord(
                    m.topic() or "",
                    m.partition() or 0,
                    m.offset() or 0,
                    m.key(),
                    m.value(),
                    headers if isinstance(headers, list) else None,
                    m.timestamp()[1],
                )
            )
        self.kept.journal(records)


def journal_from_env(environ: Mapping[str, str], state_topic: str) -> MessageJournal | None:
    path = environ.get(JOURNAL_ENV, "").strip()
    return MessageJournal(KeptLog(Path(path), state_topic)) if path else None

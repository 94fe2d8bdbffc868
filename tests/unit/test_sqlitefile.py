"""Opening the shared SQLite file while another process writes it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from streams.views import sqlitefile


def test_open_waits_out_a_writer_that_holds_the_file_before_it_is_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new file still in rollback mode with a writer in it (two dispatchers
    starting together): switching to WAL is refused at once, without the busy
    timeout, so the open retries until the writer commits."""
    path = tmp_path / "shared.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    retries: list[float] = []

    def writer_commits(seconds: float) -> None:
        retries.append(seconds)
        writer.execute("COMMIT")

    monkeypatch.setattr("streams.views.sqlitefile.time.sleep", writer_commits)
    conn = sqlitefile.open_shared_file(path)
    assert retries == [sqlitefile.WAL_RETRY_S], "the open did not meet the writer"
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (1,)
    conn.close()
    writer.close()


def test_open_still_fails_on_other_errors(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(sqlite3.OperationalError):
        sqlitefile.open_shared_file(directory)

"""History stores: SQLite (embedded default); Cassandra arrives with the dispatch issue."""

from __future__ import annotations

from streams.config import Settings
from streams.history.sqlite import SqliteHistoryStore
from streams.ports import HistoryStore


def open_history_store(settings: Settings) -> HistoryStore:
    if settings.cassandra_contact_points:
        raise NotImplementedError(
            "CASSANDRA_CONTACT_POINTS is set, but the Cassandra history store is not built yet "
            "(it lands with the dispatcher issue); unset it to use SQLite"
        )
    return SqliteHistoryStore(settings.history_db_path)

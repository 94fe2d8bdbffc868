"""History stores: SQLite (embedded default) and Cassandra (production).

``open_execution_history`` picks the store of execution outcomes: Cassandra when
CASSANDRA_CONTACT_POINTS is set, else the SQLite file under the data directory.
The task read model the API shows is elsewhere (``streams.views.readmodel``).
"""

from __future__ import annotations

from streams.config import Settings
from streams.ports import ExecutionHistory
from streams.views.history.sqlite import SqliteHistoryStore


def open_execution_history(settings: Settings) -> ExecutionHistory:
    if settings.cassandra_contact_points:
        from streams.views.history.cassandra import CassandraHistoryStore

        return CassandraHistoryStore(
            settings.cassandra_contact_points,
            keyspace=settings.cassandra_keyspace,
            ttl_s=settings.history_ttl_s,
        )
    return SqliteHistoryStore(settings.history_db_path)

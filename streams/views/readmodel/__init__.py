"""The API's read model: SQLite (embedded, beside the history) or Cassandra (production)."""

from __future__ import annotations

from streams.config import Settings
from streams.ports import ReadModel


def open_read_model(settings: Settings) -> ReadModel:
    if settings.cassandra_contact_points:
        from streams.views.readmodel.cassandra import CassandraReadModel

        return CassandraReadModel.connect(
            settings.cassandra_contact_points,
            keyspace=settings.cassandra_keyspace,
            ttl_s=settings.history_ttl_s,
        )
    from streams.views.readmodel.sqlite import SqliteReadModel

    return SqliteReadModel(settings.history_db_path)

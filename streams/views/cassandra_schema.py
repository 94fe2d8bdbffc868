"""The CQL files of infra/cassandra/, applied to a keyspace the operator created.

kronwheel never creates its keyspace: replication (NetworkTopologyStrategy,
datacenters, factors) is the operator's decision (infra/cassandra/00-keyspace.cql).
Opening a store checks that the keyspace exists, with a message that says how
to create it, and then creates its tables IF NOT EXISTS.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Any

DEFAULT_KEYSPACE = "kronwheel"
KEYSPACE_FILE = "00-keyspace.cql"
HISTORY_FILE = "10-history.cql"
READMODEL_FILE = "20-readmodel.cql"


class KeyspaceMissing(RuntimeError):
    """The configured keyspace does not exist: the operator creates it first."""


def statements(file_name: str, keyspace: str) -> list[str]:
    """The statements of one CQL file, for ``keyspace``, without comments."""
    text = (resources.files("streams.infra") / "cassandra" / file_name).read_text("utf-8")
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    text = re.sub(rf"\b{DEFAULT_KEYSPACE}\b", keyspace, text)
    return [statement.strip() for statement in text.split(";") if statement.strip()]


def require_keyspace(session: Any, keyspace: str) -> None:
    rows = session.execute(
        "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
        (keyspace,),
    )
    if rows.one() is None:
        raise KeyspaceMissing(
            f"Cassandra keyspace {keyspace!r} does not exist. kronwheel does not create it: "
            f"set its replication in infra/cassandra/{KEYSPACE_FILE} and run "
            f"`cqlsh -f infra/cassandra/{KEYSPACE_FILE}` (or set KRONWHEEL_CASSANDRA_KEYSPACE "
            "to the keyspace you made)."
        )


def apply_tables(session: Any, file_name: str, keyspace: str) -> None:
    require_keyspace(session, keyspace)
    for statement in statements(file_name, keyspace):
        session.execute(statement, timeout=60.0)

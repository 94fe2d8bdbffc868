"""Views of the topics: the execution history store, the task read model and
the projector that keeps it, each with a SQLite and a Cassandra implementation."""

"""How many partitions ``kronwheel dev`` gives its embedded broker's topics."""

from __future__ import annotations

from streams.config import Settings
from streams.kafka.topics import DUE, topic_partitions
from streams.ops.durable import FILE_NAME as KEPT_LOG_FILE

# Partitions of a new data directory's topics on the embedded broker. Each
# processor transaction sends the broker a produce request per partition it
# writes, a marker on each and its control requests, so on one machine fewer
# partitions cost less: with 2 instead of 6 the 100,000-task minute took the
# broker from 38.8 to 26.1 CPU-s and the lateness p99 from 505 to 201 ms
# (docs/results.md). Two still give two dispatchers something each.
DEV_PARTITIONS = 2
PARTITIONS_FILE = "partitions"


def dev_partitions(settings: Settings) -> int:
    """The partition count of dev's embedded topics, fixed per data directory.

    ``KRONWHEEL_PARTITIONS`` wins. Otherwise the count the directory was created
    with (its ``partitions`` file), since its kept log and the processor's stores
    are numbered by partition: a directory from before that file existed keeps
    the topics' default (infra/topics.toml) it was made with. A new directory
    gets DEV_PARTITIONS. The count is written down the first time."""
    path = settings.data_dir / PARTITIONS_FILE
    if settings.partitions is not None:
        chosen = settings.partitions
    elif path.exists():
        chosen = int(path.read_text().strip())
    elif (settings.data_dir / KEPT_LOG_FILE).exists():
        chosen = topic_partitions(settings, DUE)  # infra/topics.toml's, as it was made
    else:
        chosen = DEV_PARTITIONS
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{chosen}\n")
    return chosen

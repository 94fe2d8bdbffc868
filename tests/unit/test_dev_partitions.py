"""How many partitions dev's embedded topics get: fixed per data directory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from streams.config import Settings
from streams.kafka.topics import DUE, topic_partitions
from streams.ops.dev import reset_data_dir
from streams.ops.dev_partitions import DEV_PARTITIONS, PARTITIONS_FILE, dev_partitions


def _settings(tmp_path: Path, partitions: int | None = None) -> Settings:
    return replace(Settings(), data_dir=tmp_path / "data", partitions=partitions)


def test_a_new_directory_gets_dev_partitions_and_keeps_them(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert dev_partitions(settings) == DEV_PARTITIONS
    assert (settings.data_dir / PARTITIONS_FILE).read_text().strip() == str(DEV_PARTITIONS)
    # The next run, with tasks kept by then, reads the same count.
    (settings.data_dir / "kept.sqlite3").write_bytes(b"kept")
    assert dev_partitions(settings) == DEV_PARTITIONS


def test_a_directory_from_before_the_file_keeps_the_count_it_was_made_with(
    tmp_path: Path,
) -> None:
    """Its kept log and the processor's stores are numbered by partition."""
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "kept.sqlite3").write_bytes(b"kept")
    made_with = topic_partitions(settings, DUE)
    assert made_with != DEV_PARTITIONS
    assert dev_partitions(settings) == made_with
    assert (settings.data_dir / PARTITIONS_FILE).read_text().strip() == str(made_with)


def test_the_setting_wins_and_a_new_directory_records_it(tmp_path: Path) -> None:
    assert dev_partitions(_settings(tmp_path, partitions=4)) == 4
    assert dev_partitions(_settings(tmp_path)) == 4  # later runs without the setting
    assert dev_partitions(_settings(tmp_path, partitions=3)) == 3  # the setting still wins


def test_reset_forgets_the_count(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / PARTITIONS_FILE).write_text("6\n")
    reset_data_dir(settings)
    assert dev_partitions(settings) == DEV_PARTITIONS

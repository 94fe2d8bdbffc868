"""bench.records_per_task's arithmetic, over plain records: markers from watermarks,
offset commits from __consumer_offsets keys and batches."""

from __future__ import annotations

import struct

import pytest

from bench.kafka_requests import request_headers, role_of_client
from bench.record_tally import (
    SeenRecord,
    java_string_hash,
    offset_commits,
    offsets_key_group,
    offsets_partition,
    tally_topic,
)


def test_offsets_no_reader_gets_are_transaction_markers() -> None:
    # Partition 0: records at 0, 1, 3 (a marker at 2) and 4, a marker at 5.
    # Partition 1: a record at 10 and its marker at 11 (the log starts at 10).
    records = [
        SeenRecord(0, 0, 100),
        SeenRecord(0, 1, 50, tombstone=True),
        SeenRecord(0, 3, 10),
        SeenRecord(0, 4, 10),
        SeenRecord(1, 10, 7),
    ]
    tally = tally_topic("tasks.state", records, {0: (0, 6), 1: (10, 12)}, committed_records=4)
    assert (tally.records, tally.bytes, tally.tombstones) == (5, 177, 1)
    assert tally.log_offsets == 8
    assert tally.markers == 3
    assert tally.aborted == 1  # a read_committed reader got one record fewer


def test_an_empty_topic_has_nothing_and_an_unknown_committed_count_stays_unknown() -> None:
    tally = tally_topic("tasks.dead", [], {0: (0, 0)})
    assert (tally.records, tally.markers, tally.aborted) == (0, 0, None)


def test_a_record_outside_the_watermarks_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        tally_topic("tasks.due", [SeenRecord(0, 6, 1)], {0: (0, 6)})


def offsets_key(group: str, topic: str = "t", partition: int = 0, version: int = 1) -> bytes:
    def string(text: str) -> bytes:
        data = text.encode()
        return struct.pack(">h", len(data)) + data

    return struct.pack(">h", version) + string(group) + string(topic) + struct.pack(">i", partition)


def test_offset_commit_keys_name_their_group_and_other_keys_do_not() -> None:
    assert offsets_key_group(offsets_key("g.kronwheel-processors")) == "g.kronwheel-processors"
    assert offsets_key_group(offsets_key("old", version=0)) == "old"
    group_metadata = struct.pack(">h", 2) + struct.pack(">h", 1) + b"g"
    assert offsets_key_group(group_metadata) is None
    assert offsets_key_group(None) is None
    assert offsets_key_group(b"\x00\x01\x00\x09ab") is None  # truncated


def test_one_commit_is_one_run_of_consecutive_offsets_of_its_group() -> None:
    p, d, other = "p", "d", "someone-else"
    records = [
        # p commits 3 partitions in one batch; its marker takes offset 3.
        (7, 0, p),
        (7, 1, p),
        (7, 2, p),
        (7, 4, other),
        (7, 5, p),  # another group's record in between: a new commit
        (7, 6, p),
        (7, 8, p),  # a gap (a marker): a new commit
        (9, 0, d),  # another partition
        (9, 1, None),  # not an offset commit (group metadata)
        (9, 2, d),
    ]
    counts = offset_commits(records, [p, d])
    assert (counts[p].records, counts[p].commits) == (6, 3)
    assert (counts[d].records, counts[d].commits) == (2, 2)


def test_the_offsets_partition_follows_javas_string_hash() -> None:
    # Known values of java.lang.String.hashCode.
    assert java_string_hash("") == 0
    assert java_string_hash("a") == 97
    assert java_string_hash("hello") == 99162322
    assert java_string_hash("polygenelubricants") == -(2**31)  # Integer.MIN_VALUE
    assert offsets_partition("polygenelubricants", 50) == 0
    assert offsets_partition("hello", 50) == 99162322 % 50
    assert offsets_partition("Aa") == offsets_partition("BB")  # a known collision
    # A negative hash: Kafka takes its absolute value (checked against java.lang.String).
    assert java_string_hash("x.kronwheel-dispatchers") == -332737154
    assert offsets_partition("x.kronwheel-dispatchers", 50) == 4
    assert java_string_hash("é☃x") == 525694  # UTF-16 code units


def request_frame(api_key: int, client_id: str, body: bytes = b"\x00" * 7) -> bytes:
    client = client_id.encode()
    header = struct.pack(">hhih", api_key, 11, 42, len(client)) + client
    return struct.pack(">i", len(header) + len(body)) + header + body


def test_the_proxy_reads_each_complete_request_header_however_the_bytes_arrive() -> None:
    stream = request_frame(1, "kronwheel-processor-ab12") + request_frame(26, "kronwheel-api-x")
    buffer = bytearray(stream[:9])  # a partial first frame: nothing yet
    assert request_headers(buffer) == []
    buffer += stream[9:-3]
    assert request_headers(buffer) == [(1, "kronwheel-processor-ab12")]
    buffer += stream[-3:]
    assert request_headers(buffer) == [(26, "kronwheel-api-x")]
    assert buffer == bytearray()
    assert role_of_client("kronwheel-processor-ab12") == "processor"
    assert role_of_client("rdkafka") == "rdkafka"

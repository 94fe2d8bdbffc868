"""Count the Kafka requests clients send a broker, by API and client id.

:class:`CountingProxy` is a TCP proxy on 127.0.0.1 that forwards bytes both
ways unchanged and reads the request headers going to the broker (size,
api_key, api_version, correlation id, client id). Clients keep talking to the
proxy only if the broker advertises the proxy's address, so
:class:`CountedTansu` starts the dev broker (Tansu, as streams.kafka.broker
does) listening on one port and advertising the proxy's, and runs the proxy
in a process of its own (``python -m bench.kafka_requests``; in the bench's
process it competed with the sink and the REST client for the GIL and made
the pipeline seconds late), which rewrites its counts to a JSON file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from types import TracebackType

from streams.kafka.broker import free_loopback_port, tansu_binary
from streams.ops.procs import spawn, stop

API_NAMES = {
    0: "Produce",
    1: "Fetch",
    2: "ListOffsets",
    3: "Metadata",
    8: "OffsetCommit",
    9: "OffsetFetch",
    10: "FindCoordinator",
    11: "JoinGroup",
    12: "Heartbeat",
    13: "LeaveGroup",
    14: "SyncGroup",
    18: "ApiVersions",
    19: "CreateTopics",
    22: "InitProducerId",
    24: "AddPartitionsToTxn",
    25: "AddOffsetsToTxn",
    26: "EndTxn",
    28: "TxnOffsetCommit",
    32: "DescribeConfigs",
    71: "GetTelemetrySubscriptions",
    72: "PushTelemetry",
}


def role_of_client(client_id: str) -> str:
    """kronwheel's client ids are ``kronwheel-<role>-<instance>``: the role."""
    parts = client_id.split("-")
    return parts[1] if len(parts) >= 3 and parts[0] == "kronwheel" else client_id or "?"


def request_headers(buffer: bytearray) -> list[tuple[int, str]]:
    """Take every complete request off the front of ``buffer``: (api_key, client id)."""
    out = []
    while len(buffer) >= 4:
        size = int.from_bytes(buffer[:4], "big")
        if len(buffer) < 4 + size:
            break
        frame = bytes(buffer[4 : 4 + size])
        del buffer[: 4 + size]
        api_key = int.from_bytes(frame[0:2], "big", signed=True)
        length = int.from_bytes(frame[8:10], "big", signed=True) if size >= 10 else -1
        client = frame[10 : 10 + length].decode("utf-8", "replace") if length > 0 else ""
        out.append((api_key, client))
    return out


class CountingProxy:
    def __init__(self, broker_port: int, port: int | None = None) -> None:
        self.broker_port = broker_port
        self.port = port or free_loopback_port()
        self.counts: Counter[tuple[str, str]] = Counter()  # (role, api) -> requests
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="counting-proxy", daemon=True)

    def snapshot(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.counts)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the counting proxy did not start")
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.broker_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, count=True), self._pipe(up_reader, writer, count=False)
        )

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: bool
    ) -> None:
        pending = bytearray()
        try:
            while data := await reader.read(65536):
                writer.write(data)
                if count:
                    pending += data
                    found = request_headers(pending)
                    with self._lock:
                        for api_key, client in found:
                            api = API_NAMES.get(api_key, str(api_key))
                            self.counts[(role_of_client(client), api)] += 1
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()


class CountedTansu:
    """Tansu on a port of its own, advertising the proxy's: every client's request
    goes through the proxy (a child process, counting into ``counts_path``)."""

    def __init__(self, counts_path: Path) -> None:
        self.broker_port = free_loopback_port()
        self.proxy_port = free_loopback_port()
        self.counts_path = counts_path
        self._processes: list[subprocess.Popen[bytes]] = []

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    def __enter__(self) -> CountedTansu:
        self._processes.append(
            spawn(
                [
                    sys.executable,
                    "-m",
                    "bench.kafka_requests",
                    f"--port={self.proxy_port}",
                    f"--broker-port={self.broker_port}",
                    f"--out={self.counts_path}",
                ],
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        )
        self._processes.append(
            spawn(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self.broker_port}",
                    "--advertised-listener-url",
                    f"tcp://127.0.0.1:{self.proxy_port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        )
        return self

    @property
    def pid(self) -> int:
        return self._processes[-1].pid

    def snapshot(self) -> Counter[tuple[str, str]]:
        """The counts as the proxy last wrote them (every DUMP_EVERY_S)."""
        time.sleep(2 * DUMP_EVERY_S)
        try:
            rows = json.loads(self.counts_path.read_text())
        except (OSError, ValueError):
            return Counter()
        return Counter({(role, api): n for role, api, n in rows})

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for process in reversed(self._processes):
            stop(process, timeout=5.0)


DUMP_EVERY_S = 0.25


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kafka_requests")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--broker-port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with CountingProxy(args.broker_port, args.port) as proxy:
        while True:
            rows = [[role, api, n] for (role, api), n in sorted(proxy.snapshot().items())]
            temporary = args.out.with_suffix(".tmp")
            temporary.write_text(json.dumps(rows))
            temporary.replace(args.out)
            time.sleep(DUMP_EVERY_S)


if __name__ == "__main__":
    raise SystemExit(main())

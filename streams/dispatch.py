"""The dispatcher role: tasks.due -> run the target -> history store -> tasks.results.

A consumer group over ``tasks.due``. Each dispatcher runs targets with bounded
concurrency and per-host limits, records every outcome in the history store
(idempotent by fire id) and publishes results, retry commands and dead letters
with the consumed offsets in one Kafka transaction
(:mod:`streams.dispatching.dispatcher` has the loop; ``docs/dispatch.md`` the design).
"""

from __future__ import annotations

import asyncio
import logging
import signal

from streams.config import Settings
from streams.dispatching.dispatcher import Dispatcher
from streams.dispatching.kafka_side import group_id
from streams.kafka.transactions import FatalKafkaError
from streams.views.history import open_execution_history

__all__ = ["Dispatcher", "group_id", "run_dispatcher"]

log = logging.getLogger(__name__)


def run_dispatcher(settings: Settings) -> None:
    async def main() -> None:
        store = open_execution_history(settings)
        dispatcher = Dispatcher(settings, store)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, dispatcher.stop)
        try:
            await dispatcher.run()
        finally:
            store.close()

    try:
        asyncio.run(main())
    except FatalKafkaError as exc:
        # Fenced (another process took this slot) or another fatal error: this
        # process must not write again. Exit non-zero for the supervisor.
        log.error("dispatcher stopped by a fatal Kafka error: %s", exc)
        raise SystemExit(1) from None

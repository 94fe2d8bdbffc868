"""The dispatcher role: tasks.due -> run the target -> history store -> tasks.results.

A consumer group over ``tasks.due``. Each dispatcher runs targets with bounded
concurrency and per-host limits, records every outcome in the history store
(idempotent by fire id) and publishes results, retry commands and dead letters
with the consumed offsets in one Kafka transaction
(:mod:`streams.dispatching.dispatcher` has the loop; ``docs/dispatch.md`` the design).
"""

from __future__ import annotations

import asyncio
import signal

from streams.config import Settings
from streams.dispatching.dispatcher import Dispatcher
from streams.dispatching.kafka_side import group_id
from streams.views.history import open_execution_history

__all__ = ["Dispatcher", "group_id", "run_dispatcher"]


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

    asyncio.run(main())

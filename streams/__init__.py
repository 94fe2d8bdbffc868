"""kronwheel: a distributed task scheduler built as a Kafka event-streaming pipeline.

Data flow (see docs/architecture.md):

    REST / other services -> tasks.commands -> timewheel processors -> tasks.due
        -> dispatchers -> target; outcomes -> history store + tasks.results

``streams.core`` is the pure core (model, schedule math, clock, task table): no I/O,
time is always an argument. Everything that touches Kafka, HTTP or a disk lives
in the adapter modules beside it and depends on the core, never the reverse.
"""

__version__ = "0.1.0"

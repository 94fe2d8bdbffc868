"""One exception tree for kronwheel, with typed constructors."""

from __future__ import annotations


class KronwheelError(Exception):
    """Base of every error kronwheel raises on purpose."""


class ValidationError(KronwheelError):
    """Bad input: names the field, says what is wrong, maps to a 4xx.

    ``field`` is a dotted path into the request body (``schedule.cron``), so a
    client can point at the exact input to fix.
    """

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.code = code

    @classmethod
    def missing(cls, field: str) -> ValidationError:
        return cls(field, "is required", "missing")

    @classmethod
    def wrong_type(cls, field: str, expected: str) -> ValidationError:
        return cls(field, f"must be {expected}", "wrong_type")


class MalformedEvent(KronwheelError):
    """A record on a topic that cannot be decoded or does not make sense.

    It goes to ``tasks.dead`` with this reason and its original bytes; the
    consumer keeps going.
    """


class BrokerUnavailable(KronwheelError):
    """The Kafka-protocol broker could not be reached or started."""

"""Kafka adapters: client loops, topic specs, the Avro codec and records, the embedded broker.

Everything that knows confluent-kafka or the wire format lives here; the roles
and the core see records and plain values.
"""

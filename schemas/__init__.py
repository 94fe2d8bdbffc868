"""The Avro schemas of kronwheel's topics, shipped as package data (streams.schemas)."""

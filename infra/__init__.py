"""Infrastructure specs (topics, CQL, monitoring), shipped as package data (streams.infra)."""

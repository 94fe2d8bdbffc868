"""Infrastructure specs (topics, later CQL and monitoring), shipped as package data (streams.infra)."""

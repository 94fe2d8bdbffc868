"""Operations: replay, status, the one-machine supervisor (`kronwheel dev`), child
processes and the per-role ops server (metrics, health, readiness)."""

"""The processor's internals: one partition's wheel and index, its local store,
and reading its changelog (streams/timewheel.py is the role that runs them)."""

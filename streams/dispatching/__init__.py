"""The parts of the dispatcher role (streams/dispatch.py puts them together)."""

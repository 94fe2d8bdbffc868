"""Operator recovery by replaying topics: history from tasks.results, firings from
tasks.due, processor state from tasks.commands (``kronwheel replay``)."""

"""Fault-injection tests: the real server killed and restarted under load."""

"""Escalation of urgent calls to on-call practitioners: the engine, its channels, acknowledgement."""

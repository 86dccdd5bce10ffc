"""Dialplan files: YAML in, strict frozen models out, every error with its file and line."""

"""The admin HTTP API on twisted.web: thin resources that parse, call the store, and serialise."""

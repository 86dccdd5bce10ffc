"""The forwarding watch: each practice's forwarding proved by calling its line (docs/forwarding-watch.md)."""

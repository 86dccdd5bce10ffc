"""The controller: per-call orchestration. Media events in, domain decisions, media commands out."""

"""Several nodes on one PostgreSQL: a lease per node with fencing, and the roles one node leads at a
time (the escalation engine). See docs/operations.md, "Several nodes"."""

"""Settings of the node leases (the `cluster:` section of the daemon settings).

They matter with PostgreSQL, where several nodes may share the database: each node renews its
lease every `renew_seconds`; a node that could not renew for `lease_seconds` stops writing, and
the others may take its work (the escalation lead) once `lease_seconds` have passed on the
database's clock. With SQLite there is one node and it always holds its lease.

`reap_after_seconds` is how long a node's lease must have been gone (expired, or given up by a
clean stop) before a survivor closes its open calls (callrouter.store.reaping). It must outlast a
controller's restart: a controller restarted with its media service alive gives its lease up,
takes it back under a new epoch within seconds and re-adopts its calls, which must never be
reaped meanwhile. It counts from the lease's expiry, itself up to `lease_seconds` after a killed
node's last renewal.

`shared_desk` makes the nodes serve one team together (callrouter.controller.shared_desk): the
waiting calls, the offers and the secretaries' logins and pauses in the database, one serving
order over every node's calls, at most one active offer per secretary. Off by default: a single
node needs none of it, and it is ignored with SQLite.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClusterSettings:
    lease_seconds: float = 10.0   # how long a renewal holds; a survivor takes over after it
    renew_seconds: float = 2.0    # how often the lease is renewed and the lead tried or kept
    reap_after_seconds: float = 30.0  # a node's lease gone this long: its calls closed by a survivor
    shared_desk: bool = False     # several nodes serve one team: queue, offers and states in the database

    def problems(self) -> list[str]:
        out = []
        if not 0.5 <= self.lease_seconds <= 300:
            out.append("cluster.lease_seconds: expected 0.5 to 300 seconds")
        if not 0.1 <= self.renew_seconds <= 60:
            out.append("cluster.renew_seconds: expected 0.1 to 60 seconds")
        elif self.renew_seconds * 3 > self.lease_seconds:
            out.append("cluster.renew_seconds: at most a third of cluster.lease_seconds, so that one late "
                       "renewal does not lose the lease")
        if not 1 <= self.reap_after_seconds <= 3600:
            out.append("cluster.reap_after_seconds: expected 1 to 3600 seconds (longer than a controller's restart)")
        return out

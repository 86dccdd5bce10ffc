"""The alerts of a failed watch: French e-mails and SMS to the practice's and the secretariat's
contacts, sent through the outbox of callrouter.store.watch, so each contact hears of one failure
once, whatever the restarts and the nodes.

The rows are stored with the run's verdict; `flush` sends what is pending: each row is claimed
before it is sent, then marked sent or failed (a failed one is tried again at the next flush, a
few times). Flushes never overlap: one asked for during another runs right after it. The channels
are the escalation's senders (callrouter.escalation.channels): the HTTP SMS gateway, SMTP, or
the development outbox file.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Mapping

from twisted.internet import defer

from callrouter.domain import calendar
from callrouter.domain.call import mask_number
from callrouter.domain.watch import OUTCOME_LABELS
from callrouter.domain.watch_views import AlertView, RunView
from callrouter.escalation.messages import Message, french_number
from callrouter.escalation.ports import Channel, ChannelError
from callrouter.ports import RunBlocking, utc_from_clock
from callrouter.watch.ports import WatchStore

logger = logging.getLogger(__name__)


def compose(channel: str, to: str, key: str, run: RunView, practice_name: str, tz: str) -> Message:
    """What a contact reads of a failed watch: which line, what was seen, what to do."""
    line = french_number(run.number)
    when = run.started_at.astimezone(calendar.zone(tz)).strftime("%d/%m/%Y à %H:%M")
    seen = "; ".join(f"essai {a.n} : {OUTCOME_LABELS.get(a.outcome or '', a.outcome or 'inconnu')}"
                     for a in run.attempts)
    subject = f"[ALERTE] {practice_name} : le renvoi d'appel de la ligne {line} ne fonctionne plus"
    text = (f"ALERTE renvoi d'appel {practice_name} : la ligne {line} ne revient plus au télésecrétariat "
            f"(test du {when} : {seen}). Vérifiez le renvoi auprès de l'opérateur.")
    if channel == "email":
        text = (f"Bonjour,\n\nLe test automatique du renvoi d'appel de la ligne {line} du cabinet "
                f"{practice_name} a échoué le {when}.\n\n"
                f"Ce qui a été constaté : {seen}.\n\n"
                "L'appel de test n'est pas revenu au télésecrétariat : le renvoi de la ligne a pu expirer ou "
                "être modifié chez l'opérateur, et les patients qui appellent risquent de ne joindre personne.\n\n"
                "Merci de vérifier dès que possible le renvoi de la ligne auprès de l'opérateur, puis "
                "d'en informer le télésecrétariat.\n\n"
                f"Référence du test : V{run.id}\n\n"
                "Message automatique du télésecrétariat.\n")
    return Message(channel, to, subject, text, key)


class WatchAlerts:
    def __init__(self, store: WatchStore, channels: Mapping[str, Channel], run_blocking: RunBlocking, clock: Any,
                 practice_name: Callable[[str], tuple[str, str]]) -> None:
        """`practice_name(practice)`: its name and time zone (the dialplan's; the id when gone)."""
        self._store, self._channels, self._run, self._clock = store, dict(channels), run_blocking, clock
        self._practice = practice_name
        self._flushing: defer.Deferred | None = None
        self._again = False

    @property
    def channels(self) -> tuple[str, ...]:
        return tuple(sorted(self._channels))

    def flush(self) -> "defer.Deferred[None]":
        """Send every pending alert; fires once they are all tried."""
        if self._flushing is not None:
            self._again = True
            return self._flushing
        self._flushing = d = self._flush_all()

        def done(result: Any) -> Any:
            self._flushing = None
            if self._again:
                self._again = False
                return self.flush()
            return result

        d.addBoth(done)
        return d

    @defer.inlineCallbacks
    def _flush_all(self):
        try:
            pending = yield self._run(self._store.pending_alerts)
        except Exception as exc:  # the database is away: the next flush tries again
            logger.warning("watch alerts not read: %s", exc)
            return
        for alert, run in pending:
            yield self._send(alert, run)

    @defer.inlineCallbacks
    def _send(self, alert: AlertView, run: RunView):
        channel = self._channels.get(alert.channel)
        if channel is None:
            return
        try:
            claimed = yield self._run(self._store.claim_alert, alert.id, self._now())
        except Exception as exc:
            logger.warning("watch alert %s not claimed: %s", alert.id, exc)
            return
        if not claimed:
            return
        name, tz = self._practice(run.practice)
        message = compose(alert.channel, alert.destination, f"watch-{run.id}-{alert.id}", run, name, tz)
        try:
            provider_id = yield channel.send(message)
        except ChannelError as exc:
            logger.warning("watch alert %s (%s to %s) failed: %s", alert.id, alert.channel,
                           mask_number(alert.destination) if alert.channel == "sms" else "an address", exc)
            yield self._run(self._store.alert_failed, alert.id, str(exc))
            return
        except Exception as exc:  # a sender bug must not leave the row `sending` with nothing sent
            logger.exception("watch alert %s: the sender failed", alert.id)
            yield self._run(self._store.alert_failed, alert.id, f"sender error: {exc}")
            return
        yield self._run(self._store.alert_sent, alert.id, provider_id, self._now())
        logger.info("watch alert %s: %s sent for the failed watch of %s", alert.id, alert.channel, run.practice)

    def _now(self) -> dt.datetime:
        return utc_from_clock(self._clock)

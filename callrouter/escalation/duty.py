"""What the escalation engine does when a chain runs out with nobody acknowledging.

The row ending the chain stores, in the same transaction, the alerts to the secretariat's duty
contact (`escalation.duty_contact`, SMS and/or e-mail) as `pending` outbox rows
(callrouter.store.escalations); here they are claimed and sent like steps (a restart, or a new
leading node, sends the pending ones and never one already claimed). The chain is also counted
(`callrouter_escalations_exhausted_total`), published (MQTT `escalations/{practice}/exhausted`) and
logged. Part of callrouter.escalation.engine, which builds it with its own store and channels.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Mapping, Protocol, Sequence
from zoneinfo import ZoneInfo

from twisted.internet import defer

from callrouter.domain.call import mask_number
from callrouter.domain.escalation_views import EscalationView, StepView
from callrouter.domain.model import Dialplan
from callrouter.escalation.messages import compose_duty_alert
from callrouter.escalation.metrics import EscalationMetrics
from callrouter.escalation.ports import ChainStore, Channel, ChannelError
from callrouter.escalation.settings import EscalationSettings
from callrouter.ports import RunBlocking

logger = logging.getLogger(__name__)


class EscalationEvents(Protocol):
    """What the engine publishes (callrouter.events.notifier.EventNotifier)."""

    def escalation_exhausted(self, *, escalation_id: int, reference: str, practice: str, tier: str,
                             call_id: str | None, caller: str | None, started_at: dt.datetime,
                             steps_sent: int, declined_by: Sequence[str] = (),
                             duty_alerts: Sequence[str] = ()) -> None: ...


class DutyAlerts:
    def __init__(self, repo: ChainStore, channels: Mapping[str, Channel],
                 dialplan_for: Callable[[str], Dialplan | None], settings: EscalationSettings,
                 metrics: EscalationMetrics, run_blocking: RunBlocking, now: Callable[[], dt.datetime],
                 events: EscalationEvents | None, holds: Callable[[], bool]) -> None:
        self._repo, self._channels, self._dialplan_for = repo, channels, dialplan_for
        self._settings, self._metrics, self._run, self._now = settings, metrics, run_blocking, now
        self._events, self._holds = events, holds

    def contacts(self) -> tuple[tuple[str, str], ...]:
        duty = self._settings.duty_contact
        return tuple((channel, to) for channel, to in (("sms", duty.sms), ("email", duty.email)) if to)

    @defer.inlineCallbacks
    def exhausted(self, escalation_id: int, alerts: tuple[tuple[str, str], ...]):
        """This node ended the chain unacknowledged: count, publish, log, alert the duty contact."""
        view = yield self._run(self._repo.get, escalation_id)
        self._metrics.exhausted.labels(view.practice, view.tier).inc()
        channels = tuple(channel for channel, _ in alerts)
        logger.error("escalation %s (%s/%s) exhausted: nobody acknowledged%s; %s", escalation_id,
                     view.practice, view.tier,
                     f" (declined by {', '.join(view.declined_by)})" if view.declined_by else "",
                     f"duty contact alerted by {' and '.join(channels)}" if channels
                     else "no duty contact configured (escalation.duty_contact): event and metric only")
        if self._events is not None:
            try:
                self._events.escalation_exhausted(
                    escalation_id=view.id, reference=view.reference, practice=view.practice, tier=view.tier,
                    call_id=view.call_id, caller=view.caller, started_at=view.started_at,
                    steps_sent=steps_sent(view), declined_by=view.declined_by, duty_alerts=channels)
            except Exception:  # events never stop the chain's work
                logger.exception("escalation %s: exhausted event not published", escalation_id)
        yield self.send_pending(escalation_id)

    @defer.inlineCallbacks
    def send_pending(self, escalation_id: int | None):
        """Send the duty alerts still `pending` (of one chain, or all): each claimed first."""
        pending = yield self._run(self._repo.pending_alerts, escalation_id)
        for view, alert in pending:
            if not self._holds():  # not leading any more: the next leader sends them
                return
            claimed = yield self._run(self._repo.claim_alert, view.id, alert.step, self._now())
            if claimed:
                yield self._send(view, alert)

    @defer.inlineCallbacks
    def _send(self, view: EscalationView, alert: StepView):
        dialplan = self._dialplan_for(view.practice)
        name = dialplan.name if dialplan else view.practice
        zone = ZoneInfo(dialplan.calendar.timezone) if dialplan else dt.timezone.utc
        started = view.started_at.astimezone(zone).strftime("%d/%m/%Y %H:%M")
        message = compose_duty_alert(alert.channel, alert.destination or "", f"esc-{view.id}-duty-{alert.step}",
                                     view.reference, view.tier, name, view.caller, started, steps_sent(view),
                                     view.declined_by)
        rnd = alert.round
        try:
            channel = self._channels.get(alert.channel)
            if channel is None:
                raise ChannelError(f"no {alert.channel} channel configured")
            provider_id = yield channel.send(message)
        except Exception as exc:
            self._metrics.duty_alert_failures.labels(alert.channel).inc()
            logger.error("escalation %s: duty alert by %s to %s failed: %s", view.id, alert.channel,
                         mask_number(alert.destination), exc)
            yield self._run(self._repo.mark_failed, view.id, rnd, alert.step, str(exc), self._now())
            return
        logger.warning("escalation %s: duty contact alerted by %s (%s)", view.id, alert.channel,
                       mask_number(alert.destination))
        yield self._run(self._repo.mark_sent, view.id, rnd, alert.step,
                        None if provider_id is None else str(provider_id), self._now())


def steps_sent(view: EscalationView) -> int:
    """Steps that may have reached a practitioner (sent, delivered, or interrupted mid-send)."""
    return sum(1 for s in view.steps if s.state in ("sent", "delivered", "unknown"))

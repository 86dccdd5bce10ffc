"""The weekly reports: every minute (a TimerService on the reactor's clock), each practice whose
dialplan names a report contact (`reports:`, docs/dialplan.md) gets the PDF of its last full
ISO week by e-mail once it is due (callrouter.reports.schedule), and never twice.

Never twice, across restarts and nodes, as the escalation's outbox does it
(callrouter.escalation.engine): the week's row is inserted, under the unique key (practice, ISO
week), before anything is sent; whoever fails to insert it sends nothing. Then:

- sent: the row says so, with the Message-ID;
- refused by the relay, or the relay unreachable (nothing left): `failed`, and claimed again
  after `retry_after`, at most `max_attempts` times in all;
- cut short while the message was being handed over (the relay may have it), or the process
  stopped mid-send (the row is still `sending` at the next start): `unknown`, and NOT sent again.
  SMTP gives no way to ask a relay whether it took a message, and a practice receiving its report
  twice is better avoided than a late one; an operator who knows it did not leave sends it with
  `callrouter report --format pdf` and their own mail client.

The records are read, the PDF drawn and the mail sent on the reactor's thread pool; the time is
the reactor's.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable, Iterable, Mapping, Protocol
from zoneinfo import ZoneInfo

from twisted.application.internet import TimerService
from twisted.internet import defer

from callrouter.domain.kpis import KpiRecords, Period
from callrouter.domain.model import Dialplan
from callrouter.ports import RunBlocking, utc_from_clock
from callrouter.reports import sections, words
from callrouter.reports.content import build_report
from callrouter.reports.mailer import MailMaybeSent, MailNotSent, ReportMail
from callrouter.reports.render import filename
from callrouter.reports.schedule import due_week

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 60.0


class Outbox(Protocol):
    """callrouter.store.reports.ReportOutbox (blocking)."""

    def claim(self, practice: str, year: int, week: int, recipients: tuple[str, ...], now: dt.datetime) -> bool: ...
    def reclaim_failed(self, practice: str, year: int, week: int, recipients: tuple[str, ...], now: dt.datetime,
                       failed_before: dt.datetime, max_attempts: int) -> bool: ...
    def mark_sent(self, practice: str, year: int, week: int, message_id: str | None, now: dt.datetime) -> None: ...
    def mark_failed(self, practice: str, year: int, week: int, error: str) -> None: ...
    def mark_unknown(self, practice: str, year: int, week: int, error: str) -> None: ...
    def mark_interrupted_sends(self) -> int: ...


class Records(Protocol):
    """callrouter.store.kpi_queries.KpiQueries (blocking)."""

    def records(self, practices: Iterable[str], since: dt.datetime, until: dt.datetime) -> KpiRecords: ...


class Mailer(Protocol):
    """callrouter.reports.mailer.SmtpReportMailer (blocking)."""

    @property
    def configured(self) -> bool: ...
    def send(self, mail: ReportMail) -> str: ...


class WeeklyReports(TimerService):
    name = "weekly-reports"

    def __init__(self, dialplans: Callable[[], Mapping[str, Dialplan]], outbox: Outbox, records: Records,
                 mailer: Mailer, render_pdf: Callable[[Any], bytes], run_blocking: RunBlocking, clock: Any,
                 retry_after: dt.timedelta = dt.timedelta(minutes=15), max_attempts: int = 5,
                 interval_s: float = CHECK_EVERY_S) -> None:
        super().__init__(interval_s, self.tick)
        self.clock = clock
        self._dialplans, self._outbox, self._records, self._mailer = dialplans, outbox, records, mailer
        self._render_pdf, self._run = render_pdf, run_blocking
        self._retry_after, self._max_attempts = retry_after, max_attempts
        self._resumed = False
        self._warned = False

    @defer.inlineCallbacks
    def tick(self):
        """Send every report due now (fires when done; the next check waits for it)."""
        try:
            if not self._resumed:
                interrupted = yield self._run(self._outbox.mark_interrupted_sends)
                self._resumed = True
                if interrupted:
                    logger.warning("%d weekly report(s) were being sent when the previous run stopped: "
                                   "marked unknown, not re-sent", interrupted)
            now = utc_from_clock(self.clock)
            due = [(plan, week) for plan in sorted(self._dialplans().values(), key=lambda d: d.practice)
                   if plan.reports is not None and plan.reports.weekday is not None
                   and (week := due_week(plan.reports, ZoneInfo(plan.calendar.timezone), now)) is not None]
            if due and not self._mailer.configured:
                if not self._warned:
                    logger.warning("%d practice(s) have a weekly report contact but no SMTP relay is set "
                                   "(escalation.smtp_host): no report is sent", len(due))
                    self._warned = True
                return
            for plan, (year, week) in due:
                try:
                    yield self._run(self.send_week, plan, year, week, now)
                except Exception:  # one practice's failure never stops the others'
                    logger.exception("weekly report of %s for %d-W%02d not sent", plan.practice, year, week)
        except Exception:
            logger.exception("weekly reports not checked")

    def send_week(self, plan: Dialplan, year: int, week: int, now: dt.datetime) -> str | None:
        """Blocking: claim the week, draw its report, send it, record what happened; the outcome."""
        to = plan.reports.emails
        if not (self._outbox.claim(plan.practice, year, week, to, now)
                or self._outbox.reclaim_failed(plan.practice, year, week, to, now, now - self._retry_after,
                                               self._max_attempts)):
            return None
        try:
            mail = self.mail(plan, Period.iso_week(year, week), now)
        except Exception as exc:  # nothing left: may be tried again
            self._outbox.mark_failed(plan.practice, year, week, f"report not drawn: {exc}")
            raise
        try:
            message_id = self._mailer.send(mail)
        except MailNotSent as exc:
            self._outbox.mark_failed(plan.practice, year, week, str(exc))
            logger.warning("weekly report of %s for %d-W%02d not sent (will be tried again): %s",
                           plan.practice, year, week, exc)
            return "failed"
        except MailMaybeSent as exc:
            self._outbox.mark_unknown(plan.practice, year, week, str(exc))
            logger.error("weekly report of %s for %d-W%02d: %s; it may have left: not sent again",
                         plan.practice, year, week, exc)
            return "unknown"
        self._outbox.mark_sent(plan.practice, year, week, message_id, now)
        logger.info("weekly report of %s for %d-W%02d sent to %d recipient(s)", plan.practice, year, week, len(to))
        return "sent"

    def mail(self, plan: Dialplan, period: Period, now: dt.datetime) -> ReportMail:
        zone = ZoneInfo(plan.calendar.timezone)
        since, until = period.bounds(zone)
        report = build_report(plan.practice, plan.name, zone, period,
                              self._records.records([plan.practice], since, until), now, plan.kpis)
        year, week, _ = period.start.isocalendar()
        return ReportMail(plan.reports.emails, subject(report, week), body(report),
                          filename(report, "pdf"), self._render_pdf(report),
                          f"report-{plan.practice}-{year}-W{week:02d}")


def subject(report, week: int) -> str:
    return f"Rapport hebdomadaire du télésecrétariat — {report.name} — semaine {week}"


def body(report) -> str:
    """The e-mail's text: the headline figures (no patient data), the PDF being attached."""
    lines = ["Bonjour,", "", f"Voici le rapport d'activité du télésecrétariat pour {report.name}, "
             f"{words.period(report.period)}.", "", "En bref :"]
    lines += [f"- {h.label} : {h.value} ({h.detail})" for h in sections.headlines(report)]
    tiers = report.kpis.escalations
    if tiers:
        open_ = len(report.unacknowledged())
        lines.append(f"- Escalades : {sum(t.started for t in tiers)} déclenchée(s), "
                     f"{open_} restée(s) sans accusé de réception")
    lines += ["", "Le rapport complet, avec ses graphiques, est joint au format PDF.", "",
              "Ce message est envoyé automatiquement chaque semaine. Pour changer son destinataire ou "
              "son jour d'envoi, adressez-vous à votre télésecrétariat.", ""]
    return "\n".join(lines)

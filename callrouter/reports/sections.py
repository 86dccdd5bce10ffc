"""The report's figures as French rows, section by section: what the text, HTML and PDF reports
print and the CSV export lists. Each row is a label, the value as read, and the figures it comes
from (numerator, denominator, or a number of seconds) for the CSV.

Rates come with their numerator and denominator, and a period without calls to count shows "-"
(../shared/KPIS.md), never 0 % or 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from callrouter.domain.kpis import GOT, Rate
from callrouter.domain.sms_reply import reference
from callrouter.reports import words
from callrouter.reports.content import Report


@dataclass(frozen=True)
class Row:
    label: str
    value: str
    key: str  # stable English name, for the CSV and the tests
    numerator: int | float | None = None
    denominator: int | None = None
    strong: bool = False  # a headline figure


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]
    note: str = ""


@dataclass(frozen=True)
class Headline:
    """One of the tiles at the top of the report."""

    label: str
    value: str
    detail: str
    good: bool | None  # against the target, when there is one (None: nothing to judge)


def _rate_row(label: str, key: str, r: Rate, strong: bool = False) -> Row:
    return Row(label, words.rate(r), key, r.numerator, r.denominator, strong)


def _count(label: str, key: str, n: int) -> Row:
    return Row(label, words.number(n), key, n)


def _secs(label: str, key: str, s: float | None) -> Row:
    return Row(label, words.seconds(s), key, None if s is None else round(s, 1))


def headlines(report: Report) -> tuple[Headline, ...]:
    c, cb, p = report.kpis.calls, report.kpis.callbacks, report.params
    sl, missed = c.service_level, c.missed
    return (
        Headline("Appels reçus", words.number(c.received),
                 f"dont {words.number(c.for_secretary)} pour le secrétariat", None),
        Headline("Niveau de service", words.percent(sl.value),
                 f"{words.ratio(sl)} décrochés en {words.seconds(p.sl_threshold_s)} ou moins · "
                 f"objectif {words.percent(p.sl_target)}", None if sl.value is None else sl.value >= p.sl_target),
        Headline("Appels manqués", words.percent(missed.value), f"{words.ratio(missed)} appels comptés", None),
        Headline("Rappels effectués", words.percent(cb.completion.value),
                 f"{words.ratio(cb.completion)} demandes de rappel", None),
    )


def sections(report: Report) -> tuple[Section, ...]:
    c, cb, p = report.kpis.calls, report.kpis.callbacks, report.params
    short = words.seconds(p.short_abandon_s)
    calls = Section("Appels", (
        _count("Appels reçus", "received", c.received),
        _count("Appels pour le secrétariat", "for_secretary", c.for_secretary),
        _count("Décrochés par une secrétaire", "answered", c.answered),
        _count(f"Raccrochés en attente après {short}", "abandoned", c.abandoned),
        _count("Débordés (messagerie, message, raccroché)", "overflowed", c.overflowed),
        _count("Rappel accepté par l'appelant", "callbacks", c.callbacks),
        _count(f"Raccrochés dans les {short} (hors taux)", "short_abandons", c.short_abandons),
        _count("Coupés par un incident technique", "failed", c.failed),
        _rate_row(f"Niveau de service (à {words.seconds(p.sl_threshold_s)})", "service_level", c.service_level, True),
        Row("Objectif de niveau de service", words.percent(p.sl_target), "sl_target", p.sl_target),
        _rate_row("Taux d'appels manqués", "missed", c.missed, True),
    ), note=f"Les taux comptent les appels pour le secrétariat, moins ceux raccrochés dans les {short} "
            f"et ceux encore en cours. Un appelant qui a accepté d'être rappelé n'est pas un appel manqué.")
    spread = c.answer_time
    answer = Section("Temps de réponse", (
        _secs("Médiane", "answer_time_p50", spread.p50),
        _secs("90 % des appels décrochés en moins de", "answer_time_p90", spread.p90),
        _secs("Moyenne", "answer_time_mean", spread.mean),
        _secs("Plus longue attente décrochée", "answer_time_worst", spread.worst),
    ), note="De l'entrée en file d'attente au décroché de la secrétaire, appels décrochés seulement.")
    callbacks = Section("Rappels et messages", (
        _count("Demandes de rappel créées", "callbacks_created", cb.created),
        _rate_row("Rappels effectués (patient joint)", "callback_completion", cb.completion, True),
        _secs("Délai de rappel, médiane", "callback_delay_p50", cb.delay.p50),
        _secs("Délai de rappel, 90 % en moins de", "callback_delay_p90", cb.delay.p90),
        _count("Expirées sans rappel", "callbacks_expired", cb.expired),
        _count("Annulées", "callbacks_cancelled", cb.cancelled),
        _count("Encore à rappeler", "callbacks_open", cb.still_open),
        _count("Messages vocaux laissés", "messages_left", cb.messages_left),
        _count("Messages vocaux rappelés", "messages_called_back", cb.messages_called_back),
    ))
    ooh = report.kpis.out_of_hours
    closed = Section("Hors horaires d'ouverture", (
        _count("Appels reçus fermé, jour férié ou fermeture", "out_of_hours", ooh.received),
        *(_count(f"dont {words.GOT[g]}", f"out_of_hours_{g}", ooh.got.get(g, 0))
          for g in GOT if ooh.got.get(g, 0)),
    ))
    return calls, answer, callbacks, closed, escalation_section(report)


def escalation_section(report: Report) -> Section:
    rows: list[Row] = []
    for t in report.kpis.escalations:
        name = words.tier(t.tier)
        rows += [
            _count(f"{name} : chaînes déclenchées", f"escalations_{t.tier}_started", t.started),
            _rate_row(f"{name} : acquittées", f"escalations_{t.tier}_acknowledged", Rate(t.acknowledged, t.started)),
            _count(f"{name} : refus d'un praticien", f"escalations_{t.tier}_declined", t.declined_steps),
            _count(f"{name} : épuisées sans réponse", f"escalations_{t.tier}_exhausted", t.exhausted),
            _secs(f"{name} : délai d'acquittement, médiane", f"escalations_{t.tier}_ack_p50", t.ack_delay.p50),
            _secs(f"{name} : délai d'acquittement, le plus long", f"escalations_{t.tier}_ack_worst",
                  t.ack_delay.worst),
        ]
        if t.active:
            rows.append(_count(f"{name} : en cours", f"escalations_{t.tier}_active", t.active))
    if not rows:
        rows.append(_count("Escalades déclenchées", "escalations_started", 0))
    return Section("Escalades", tuple(rows), note="Délai d'acquittement : du déclenchement de la chaîne à "
                                                   "l'accusé de réception d'un praticien.")


def unacknowledged_lines(report: Report) -> tuple[str, ...]:
    """Each chain that ended with nobody acknowledging, one line each."""
    out = []
    for c in report.unacknowledged():
        declined = f", refusée par {c.declined} praticien{'s' if c.declined > 1 else ''}" if c.declined else ""
        taken = f", prise en charge le {words.moment(c.taken_at, report.zone)}" if c.taken_at else ""
        out.append(f"{reference(c.id)} · {words.tier(c.tier)} · déclenchée le {words.moment(c.started_at, report.zone)}"
                   f"{declined}{taken}")
    return tuple(out)


def title(report: Report) -> str:
    return f"Rapport d'activité du télésecrétariat — {report.name}"


def subtitle(report: Report) -> str:
    week = words.iso_week(report.period)
    when = words.period(report.period)
    return f"{week.capitalize()}, {when}" if week else when.capitalize()


def colophon(report: Report) -> str:
    return (f"Heures locales ({report.kpis.zone}). Édité le {words.moment(report.generated_at, report.zone)} "
            f"à partir du journal des appels.")

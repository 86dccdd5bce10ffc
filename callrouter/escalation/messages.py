"""What practitioners read: French, and the minimum health information (tier, practice, number)."""

from __future__ import annotations

from dataclasses import dataclass

TIER_LABELS = {"vital": "URGENCE VITALE", "urgent": "URGENT"}


@dataclass(frozen=True)
class Message:
    """One message to send. `key` is unique per (escalation, round, step): an idempotency key for
    providers that support one."""

    channel: str
    to: str
    subject: str
    text: str
    key: str


def french_number(number: str | None) -> str:
    """+33612345678 -> 06 12 34 56 78; other numbers as they are."""
    if not number:
        return "numéro masqué"
    if number.startswith("+33") and len(number) == 12:
        national = "0" + number[3:]
        return " ".join(national[i:i + 2] for i in range(0, 10, 2))
    return number


def compose(channel: str, to: str, key: str, tier: str, practice_name: str, caller: str | None,
            ack_url: str, note: str | None = None, reference: str = "") -> Message:
    """The message for one step. A secretary's `note` goes in the e-mail only: an SMS shows on a
    locked screen, so it carries nothing beyond the tier, the practice and the number.

    `reference` (`E42`, callrouter.domain.sms_reply) names the chain in an SMS reply: the SMS says
    to answer OK or NON with it."""
    label = TIER_LABELS.get(tier, tier.upper())
    callback = french_number(caller)
    ref = f" {reference}" if reference else ""
    text = (f"{label} {practice_name} : rappeler le patient au {callback}. "
            f"Répondez OK{ref} si vous prenez en charge, NON{ref} si vous ne pouvez pas. "
            f"Accusé de réception : {ack_url}")
    subject = f"[{label}] {practice_name} : patient à rappeler"
    if channel == "email":
        text = (f"Bonjour,\n\n{label} pour {practice_name} : merci de rappeler le patient au "
                f"{callback}.\n\n"
                + (f"Note du secrétariat : {' '.join(note.split())}\n\n" if note else "")
                + f"Pour accuser réception (et arrêter l'escalade) : {ack_url}\n\n"
                + (f"Référence de l'alerte : {reference}\n\n" if reference else "")
                + "Message automatique du télésecrétariat.\n")
    return Message(channel, to, subject, text, key)


def compose_duty_alert(channel: str, to: str, key: str, reference: str, tier: str, practice_name: str,
                       caller: str | None, started: str, steps_sent: int,
                       declined_by: tuple[str, ...]) -> Message:
    """To the secretariat's duty contact: a chain ran out and nobody took the patient's case.
    `started` is the chain's start, already written for a reader ("23/11/2026 22:00")."""
    label = TIER_LABELS.get(tier, tier.upper())
    callback = french_number(caller)
    subject = f"[ALERTE] {practice_name} : escalade {reference} sans prise en charge"
    text = (f"ALERTE télésecrétariat : escalade {reference} {label} {practice_name} terminée sans "
            f"prise en charge. Rappeler le patient au {callback} et trouver un praticien.")
    if channel == "email":
        refused = ", ".join(declined_by) if declined_by else "aucun"
        text = (f"Bonjour,\n\nL'escalade {reference} ({label}) du cabinet {practice_name}, démarrée "
                f"le {started}, est terminée sans qu'aucun praticien n'en accuse réception.\n\n"
                f"Messages et appels envoyés : {steps_sent}. Praticiens ayant refusé : {refused}.\n\n"
                f"Le patient attend d'être rappelé au {callback} : merci de trouver un praticien "
                "ou d'orienter le patient (15 en cas d'urgence vitale).\n\n"
                "Message automatique du télésecrétariat.\n")
    return Message(channel, to, subject, text, key)

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
            ack_url: str, note: str | None = None) -> Message:
    """The message for one step. A secretary's `note` goes in the e-mail only: an SMS shows on a
    locked screen, so it carries nothing beyond the tier, the practice and the number."""
    label = TIER_LABELS.get(tier, tier.upper())
    callback = french_number(caller)
    text = (f"{label} {practice_name} : rappeler le patient au {callback}. "
            f"Accusé de réception : {ack_url}")
    subject = f"[{label}] {practice_name} : patient à rappeler"
    if channel == "email":
        text = (f"Bonjour,\n\n{label} pour {practice_name} : merci de rappeler le patient au "
                f"{callback}.\n\n"
                + (f"Note du secrétariat : {' '.join(note.split())}\n\n" if note else "")
                + f"Pour accuser réception (et arrêter l'escalade) : {ack_url}\n\n"
                "Message automatique du télésecrétariat.\n")
    return Message(channel, to, subject, text, key)

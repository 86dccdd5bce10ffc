"""Settings of the call controller."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ControllerSettings:
    # Secretaries per queue: keys "practice/queue", "practice/*", "line:<name>" or "*"; values SIP
    # URIs (a phone always offered calls) or usernames (a softphone registered at the edge, offered
    # calls only while registered), tried in order of idleness.
    secretaries: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The old name of `secretaries`, still read (with a warning at load) when `secretaries` is not given.
    agents: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Skill levels for the `skill` strategy: secretary (username or URI) -> practice (or "*") -> level
    # (higher is offered first; 1 when not given).
    levels: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    # Secretaries with a username are offered calls only once logged in (API); fixed phones given
    # as sip: URIs are always logged in. Both can be paused and resumed.
    login_required: bool = True
    # Where logins and pauses are kept across restarts (set by the service tree to var/).
    state_file: Path | None = None
    # Where registered softphones are reached (the edge's host:port); set by the service tree.
    secretary_domain: str | None = None
    ring_timeout_s: float = 20.0
    # How long after her screen-pop left her phone is rung, so that her console shows the card
    # first (the pop goes over the event stream, the INVITE through a worker and the edge).
    pop_lead_s: float = 0.0
    max_missed_offers: int = 3  # offers not taken in a row before a secretary is paused (0: never)
    outbound_trunk: str = "127.0.0.1:5080"  # host:port where forwarded calls are sent
    voicemail_dir: Path = Path("var/voicemail")
    voicemail_max_s: float = 120.0
    voicemail_silence_s: float = 5.0
    callback_digit_timeout_s: float = 8.0
    callback_expiry_s: float = 4 * 3600.0  # a callback task not done by then expires
    callback_retry_s: float = 600.0  # after the patient did not answer, back in line this much later
    callback_attempts: int = 3  # calls to the patient before the task is left to the secretaries
    callback_patient_ring_s: float = 30.0
    # Once the patient's line answers, how long she has to press 1 (« tapez 1 pour être mis en
    # relation »): no key by then is her voicemail answering, a failed attempt.
    callback_confirm_s: float = 15.0
    hold_prompt: str = "music_on_hold"
    ringback_prompt: str = "ringback"
    beep_prompt: str = "beep"
    console_url: str = "http://127.0.0.1:8080/console"

    def __post_init__(self) -> None:
        if self.agents and not self.secretaries:  # both given: a problem at load (callrouter.config)
            logger.warning("controller.agents is deprecated: rename it controller.secretaries (same entries)")
            object.__setattr__(self, "secretaries", self.agents)
            object.__setattr__(self, "agents", {})

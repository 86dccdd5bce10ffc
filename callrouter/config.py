"""Daemon settings: parsed once from a YAML file into strict, frozen, typed values.

Unknown keys, wrong types and out-of-range values are all collected (with their YAML path) and
reported together in one `ConfigError`. The environment variable `CALLROUTER_DATABASE_URL`
overrides `database_url`, so secrets such as a PostgreSQL password need not sit in the file.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import os
import types
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping, Union, get_args, get_origin, get_type_hints

import yaml

from callrouter.cluster.settings import ClusterSettings
from callrouter.controller.settings import ControllerSettings
from callrouter.escalation.settings import EscalationSettings
from callrouter.events.settings import MqttSettings
from callrouter.media.settings import MediaSettings
from callrouter.recording.settings import RecordingSettings
from callrouter.sip.settings import SipSettings, aligned_with_media
from callrouter.sip.webrtc import console_origins
from callrouter.watch.settings import WatchSettings

DEFAULT_DATABASE_URL = "sqlite:///var/callrouter.db"
DATABASE_URL_ENV = "CALLROUTER_DATABASE_URL"
CONFIG_ENV = "CALLROUTER_CONFIG"
DEFAULT_CONFIG = "callrouter.yaml"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """Every problem found in a settings file, one per line, each with its key path."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


@dataclass(frozen=True)
class ConsoleSettings:
    """The secretaries' console served by the HTTP server (callrouter.web.console).

    `cookie_secure`: mark the session cookie Secure; set it when the console is reached over HTTPS
    (a TLS reverse proxy in front of callrouter). `pause_reasons`: what a secretary may choose when
    she pauses, the first being the default."""

    inactivity_minutes: int = 15
    cookie_secure: bool = False
    pause_reasons: tuple[str, ...] = ("pause", "déjeuner", "réunion", "formation", "tâches administratives")


@dataclass(frozen=True)
class HttpSettings:
    """The admin API and the console. With `tls_cert` and `tls_key` (PEM files: the certificate,
    then any intermediates, and its private key) they are served over HTTPS only, and the console
    sends Strict-Transport-Security."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 64 * 1024
    tls_cert: Path | None = None
    tls_key: Path | None = None
    hsts_max_age_s: int = 365 * 24 * 3600
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    def problems(self) -> list[str]:
        if (self.tls_cert is None) != (self.tls_key is None):
            return ["http.tls_cert and http.tls_key: give both (HTTPS) or neither (plain HTTP)"]
        return []


@dataclass(frozen=True)
class AuthSettings:
    """`secrets_key_file` seals the users' TOTP secrets in the database, `audit_key_file` anchors
    the audit chain's head (docs/security.md); both default to files in `var_dir`, created (mode
    0600) at first start. Keep them out of the database's backups, and a copy of each apart."""

    token_ttl_minutes: int = 8 * 60
    totp_issuer: str = "callrouter"
    sip_realm: str = "callrouter"
    secrets_key_file: Path | None = None  # default: var_dir/secrets.key
    audit_key_file: Path | None = None    # default: var_dir/audit.key


@dataclass(frozen=True)
class RetentionSettings:
    """Days each data kind is kept; None keeps it forever.

    Purged every `purge_interval_hours` by the daemon and by `callrouter db purge`."""

    call_records_days: int | None = 365
    recordings_days: int | None = 90
    audit_days: int | None = 6 * 365
    state_history_days: int | None = 400  # the secretaries' state changes (who paused whom, when)
    watch_days: int | None = 400  # the forwarding watch's runs, attempts and alerts (no patient data)
    purge_interval_hours: int = 24


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus scrape endpoint (GET /metrics), separate from the admin API."""

    host: str = "127.0.0.1"
    port: int = 9108


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    node: str = "local"            # this controller's name: its crash sweeps touch only its calls
    dialplans: Path = Path("dialplans")
    prompts: Path = Path("prompts")
    dialplan_poll_seconds: float = 2.0
    var_dir: Path = Path("var")    # generated Kamailio config, voicemail, the default SQLite file
    log_level: str | None = None   # DEBUG, INFO, WARNING or ERROR (None: INFO, DEBUG with -v); live on SIGHUP
    http: HttpSettings = field(default_factory=HttpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    controller: ControllerSettings = field(default_factory=ControllerSettings)
    sip: SipSettings = field(default_factory=SipSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    escalation: EscalationSettings = field(default_factory=EscalationSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)  # the forwarding watch (off by default)
    cluster: ClusterSettings = field(default_factory=ClusterSettings)  # node leases (several nodes, PostgreSQL)
    recording: RecordingSettings = field(default_factory=RecordingSettings)  # call recording, voicemail (docs/recording.md)

    def problems(self) -> list[str]:
        """Cross-checks of values each section accepts on its own."""
        out = [f"media: {p}" for p in self.media.problems()]
        if self.log_level is not None and self.log_level not in LOG_LEVELS:
            out.append(f"log_level: expected one of {', '.join(LOG_LEVELS)}, got {self.log_level!r}")
        out += self.sip.problems()
        out += self.escalation.problems()
        out += self.mqtt.problems()
        out += self.watch.problems()
        out += self.http.problems()
        out += self.cluster.problems()
        out += self.recording.problems()
        if self.controller.agents:
            out.append("controller.agents: the old name of controller.secretaries; give only secretaries")
        for key, entries in self.controller.secretaries.items():
            for entry in entries:
                if not entry.startswith(("sip:", "sips:")) and not self.sip.enabled:
                    out.append(f"controller.secretaries.{key}: {entry!r} is a username, reached through the SIP edge, "
                               f"but sip.enabled is false; give a sip: URI or enable the edge")
        return out

    # --- settings derived from several sections: computed here, once, not where they are used --------

    @property
    def secrets_key_path(self) -> Path:
        return self.auth.secrets_key_file or self.var_dir / "secrets.key"

    @property
    def audit_key_path(self) -> Path:
        return self.auth.audit_key_file or self.var_dir / "audit.key"

    @property
    def edge(self) -> SipSettings:
        """The SIP edge as Kamailio runs it: `sip` listing every port the media pool may use, its
        WebSocket open to the console's own pages unless `sip.wss_origins` names them."""
        sip = aligned_with_media(self.sip, self.media)
        if sip.wss_origins:
            return sip
        return dataclasses.replace(sip, wss_origins=console_origins(
            self.http.host, self.http.port, self.http.tls, self.controller.console_url))

    @property
    def served_controller(self) -> ControllerSettings:
        """The controller as the daemon runs it: secretaries' usernames are reached at the edge's
        address (unless `secretary_domain` says otherwise), their states saved under `var_dir`
        (unless `state_file` says otherwise)."""
        controller = self.controller
        if self.sip.enabled and controller.secretary_domain is None:
            controller = dataclasses.replace(
                controller, secretary_domain=f"{self.sip.listen_address}:{self.sip.udp_port}")
        if controller.state_file is None:
            controller = dataclasses.replace(controller, state_file=self.var_dir / "secretaries.json")
        return controller


def parse_settings(data: Any, source: str = "<settings>",
                   environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from parsed YAML (a mapping or None), applying the environment override."""
    problems: list[str] = []
    if data is None:
        data = {}
    settings = _build(Settings, data, "", problems)
    if not problems:
        problems += settings.problems()
    if problems:
        raise ConfigError(source, problems)
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV)
    if url:
        settings = _replace(settings, database_url=url)
    return settings


def load_settings(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read a YAML settings file; with no path, the defaults (plus the environment override)."""
    if path is None:
        return parse_settings({}, "<defaults>", environ)
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror}"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from exc
    return parse_settings(data, str(path), environ)


def add_config_argument(parser: Any) -> None:
    """The `--config` option every command that reads the settings takes."""
    parser.add_argument("--config", help=f"settings file (default: ${CONFIG_ENV} or ./{DEFAULT_CONFIG} if present)")


def settings_path_for_cli(path: str | Path | None) -> Path | None:
    """The settings file a command reads: --config, else $CALLROUTER_CONFIG, else
    ./callrouter.yaml if present; None: the defaults."""
    path = path or os.environ.get(CONFIG_ENV)
    if path is None and Path(DEFAULT_CONFIG).exists():
        path = DEFAULT_CONFIG
    return Path(path) if path is not None else None


def settings_for_cli(path: str | Path | None) -> Settings:
    """The settings a command uses (settings_path_for_cli), else the defaults."""
    return load_settings(settings_path_for_cli(path))


def _replace(settings: Settings, **changes: Any) -> Settings:
    return dataclasses.replace(settings, **changes)


def _build(cls: type, data: Any, path: str, problems: list[str]) -> Any:
    where = path or "top level"
    if not isinstance(data, dict):
        problems.append(f"{where}: expected a mapping, got {type(data).__name__}")
        return cls()
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    for key in data:
        if key not in known:
            problems.append(f"{_join(path, str(key))}: unknown key "
                            f"(known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue
        key_path = _join(path, f.name)
        hint = hints[f.name]
        value = data[f.name]
        if is_dataclass(hint):
            values[f.name] = _build(hint, value, key_path, problems)
            continue
        checked = _check_scalar(hint, value, key_path, problems)
        if checked is not _INVALID:
            values[f.name] = checked
    return cls(**values)


_INVALID = object()


def _check_scalar(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Check one value against its type hint; record a problem and return _INVALID if wrong.

    Supported: str, int (>= 0), float, bool, Path, `X | None`, tuple[str, ...],
    Mapping[str, tuple[str, ...]] and Mapping[str, Mapping[str, int]]. Retention's `int | None`
    days must be positive (0 would purge everything at once).
    """
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        inner = next(a for a in args if a is not type(None))
        if inner is int:
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
            problems.append(f"{path}: expected a positive integer or null (keep forever), got {value!r}")
            return _INVALID
        return _check_scalar(inner, value, path, problems)
    if hint is str:
        if isinstance(value, str) and value:
            return value
        problems.append(f"{path}: expected a non-empty string, got {value!r}")
        return _INVALID
    if hint is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{path}: expected true or false, got {value!r}")
        return _INVALID
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        problems.append(f"{path}: expected a whole number >= 0, got {value!r}")
        return _INVALID
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        problems.append(f"{path}: expected a number >= 0, got {value!r}")
        return _INVALID
    if hint is Path:
        if isinstance(value, str) and value:
            return Path(value)
        problems.append(f"{path}: expected a path, got {value!r}")
        return _INVALID
    if origin is tuple:
        if isinstance(value, list) and all(isinstance(v, str) and v for v in value):
            return tuple(value)
        problems.append(f"{path}: expected a list of texts, got {value!r}")
        return _INVALID
    if origin in (Mapping, collections.abc.Mapping, dict) and get_origin(args[1]) in (Mapping, collections.abc.Mapping):
        if isinstance(value, dict) and all(
                isinstance(k, str) and isinstance(v, dict) and all(
                    isinstance(p, str) and isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= 100
                    for p, n in v.items()) for k, v in value.items()):
            return {k: dict(v) for k, v in value.items()}
        problems.append(f"{path}: expected a mapping of names to mappings of names to whole numbers 0-100, got {value!r}")
        return _INVALID
    if origin in (Mapping, collections.abc.Mapping, dict):
        if isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, list)
                                           and all(isinstance(x, str) for x in v) for k, v in value.items()):
            return {k: tuple(v) for k, v in value.items()}
        problems.append(f"{path}: expected a mapping of names to lists of texts, got {value!r}")
        return _INVALID
    raise TypeError(f"unsupported settings type {hint!r}")  # pragma: no cover - programming error


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key

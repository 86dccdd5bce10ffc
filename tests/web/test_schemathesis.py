"""schemathesis against docs/openapi.yaml and a real `callrouter serve` (the admin API alone: no
SIP edge, no MQTT), signed in as an administrator: every operation, a few generated cases each;
no answer is a server error (5xx), every answer has a documented status, content type, headers
and a body matching its documented schema, and invalid input is refused.

Bounded for `make test` (`SCHEMATHESIS_EXAMPLES`, 3 by default, derandomized); `make schemathesis`
runs more cases and writes the figures to bench/results/schemathesis.json.

Records are seeded first (a secretary of the practice, a user to act on, callback tasks, an
escalation chain) and half the generated path parameters are steered to them, so that operations
on one record reach their logic rather than a 404. `/api/secretaries/me...` is called as the
secretary, everything else as the administrator. Signing out ends the token it is called with, so
`POST /api/logout` and `DELETE /api/session` get a token of their own each time (a user created
for it); no case may disable, demote or otherwise change the accounts the run signs in with.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import zlib
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation

from tests.app.conftest import prompts_built  # noqa: F401 - the session fixture building the prompts
from tests.factories import REPO
from tests.web.serve_support import PASSWORD, add_user, api_service, totp_now

pytestmark = pytest.mark.integration

SPEC = Path(os.environ.get("SCHEMATHESIS_SPEC", REPO / "docs" / "openapi.yaml"))
EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "3"))
RESULTS = os.environ.get("SCHEMATHESIS_RESULTS")  # where `make schemathesis` wants the figures
ADMIN, SECRETARY, TARGET = "st-admin", "st-sec", "dr-cible"
PRACTICE = "e2e-test"  # the practice of tests.app.conftest.DIALPLAN
SIGN_OUTS = {("POST", "/api/logout"), ("DELETE", "/api/session")}
# What the answers are held to: schemathesis's checks of the documented contract and of refusing
# bad input (the stateful ones, which need links between operations, are not used).
CHECK_NAMES = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
               "response_headers_conformance", "response_schema_conformance", "negative_data_rejection",
               "missing_required_header", "unsupported_method", "allow_header_conformance", "ignored_auth")

schema = schemathesis.openapi.from_path(SPEC)
FIGURES: dict[str, Counter] = {}
SEEDED: dict[str, list] = {}  # path parameter -> values of records that exist
FAILED: list[dict] = []  # each failure: the operation, the request, what the check said


def steered(path_parameters: dict) -> dict:
    """Half of the values (chosen by a digest of the generated one, so runs repeat) replaced by
    records the run seeded."""
    out = dict(path_parameters)
    for name, value in path_parameters.items():
        known = SEEDED.get(name)
        digest = zlib.crc32(repr(value).encode())
        if known and digest % 2 == 0:
            out[name] = known[(digest // 2) % len(known)]
    return out


@schema.hook
def filter_case(context, case) -> bool:
    """No case aimed at the accounts the run signs in with."""
    return not str(case.path_parameters.get("username", "")).startswith(("st-", "st_"))


class SignedIn:
    """The service, its administrator's token, and fresh tokens for the sign-out operations."""

    def __init__(self, svc) -> None:
        self.svc = svc
        self.base_url = f"http://127.0.0.1:{svc.config['http']['port']}"
        self.token = self._login(ADMIN, add_user(svc, ADMIN))
        self.secretary_token = self._login(SECRETARY, add_user(svc, SECRETARY, "secretary", PRACTICE))
        add_user(svc, TARGET, "practitioner", PRACTICE)
        self._spares = itertools.count(1)
        self._seed()

    def _seed(self) -> None:
        tasks = [self._post(f"/api/practices/{PRACTICE}/tasks", {"number": f"06 12 34 56 7{i}", "note": "rappel"},
                            self.token)["id"] for i in range(3)]
        chain = self._post("/api/escalations", {"practice": PRACTICE, "tier": "vital",
                                                "callback_number": "+33612345678"}, self.token)
        SEEDED.update(username=[TARGET], practice=[PRACTICE], secretary=[SECRETARY], task_id=tasks,
                      escalation_id=[chain["escalation"]["id"]])

    def _post(self, path: str, body: dict, token: str | None = None) -> dict:
        headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(self.base_url + path, data=json.dumps(body).encode(), headers=headers)
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())

    def _login(self, username: str, secret: str) -> str:
        return self._post("/api/login", {"username": username, "password": PASSWORD, "totp": totp_now(secret)})["token"]

    def token_for(self, case) -> str:
        if case.path.startswith("/api/secretaries/me"):
            return self.secretary_token
        if (case.method.upper(), case.path) not in SIGN_OUTS:
            return self.token
        name = f"st-spare-{next(self._spares)}"  # a user of her own: her one sign-in ends here
        new = self._post("/api/users", {"username": name, "display_name": name, "role": "supervisor",
                                        "password": PASSWORD}, self.token)
        return self._login(name, new["totp_secret"])

    def still_signed_in(self) -> bool:
        for token in (self.token, self.secretary_token):
            request = urllib.request.Request(self.base_url + "/api/me", headers={"Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=20):
                    pass
            except urllib.error.HTTPError:
                return False
        return True


@pytest.fixture(scope="module")
def api(tmp_path_factory, prompts_built):  # noqa: F811
    root = tmp_path_factory.mktemp("schemathesis")
    svc = api_service(root)
    # Every documented route served: the escalation's too (its messages go to a file).
    svc.config["escalation"] = {"enabled": True, "ack_secret": "a" * 32, "inbound_sms_secret": "w" * 24,
                                "outbox_file": str(root / "outbox.jsonl")}
    svc.config["controller"]["secretaries"] = {"*": [f"sip:{SECRETARY}@127.0.0.1:5999"]}
    svc.start()
    started = time.monotonic()
    try:
        yield SignedIn(svc)
    finally:
        elapsed = time.monotonic() - started
        log = svc.log_text()
        leftovers = svc.stop()
        _write_figures(elapsed)
        assert not leftovers, "processes left running"
        assert "Traceback" not in log, log[-4000:]


def _commit() -> str | None:
    import subprocess

    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return run.stdout.strip() or None


def _write_figures(elapsed: float) -> None:
    if not RESULTS or not FIGURES:
        return
    total = sum(FIGURES.values(), Counter())
    data = {"tool": f"schemathesis {schemathesis.SCHEMATHESIS_VERSION}", "spec": "docs/openapi.yaml",
            "commit": _commit(),
            "examples_per_operation": EXAMPLES, "checks": list(CHECK_NAMES), "operations": len(FIGURES),
            "cases": total["cases"], "failures": total["failures"], "server_errors": total["server_errors"],
            "seconds": round(elapsed, 1), "failed_cases": FAILED,
            "by_operation": {op: dict(c) for op, c in sorted(FIGURES.items())}}
    path = Path(RESULTS)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


CHECK_FUNCTIONS = [check for check in CHECKS.get_all() if check.__name__ in CHECK_NAMES]


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=RESULTS is None, database=None,
          suppress_health_check=list(HealthCheck))
def test_the_api_keeps_its_documented_contract(case, api):
    figures = FIGURES.setdefault(case.operation.label, Counter())
    figures["cases"] += 1
    meta = case.meta
    if case.path_parameters and not (meta and meta.is_negative_at(ParameterLocation.PATH)):
        case.path_parameters = steered(case.path_parameters)
    # A case made to break the headers (Authorization missing or malformed) is sent as it is.
    broken_headers = meta is not None and meta.is_negative_at(ParameterLocation.HEADER)
    auth = {} if broken_headers else {"Authorization": f"Bearer {api.token_for(case)}"}
    response = case.call(base_url=api.base_url, headers=auth, timeout=30)
    figures[str(response.status_code)] += 1
    if response.status_code >= 500:
        figures["server_errors"] += 1
    try:
        case.validate_response(response, checks=CHECK_FUNCTIONS)
    except (Exception, FailureGroup) as exc:
        figures["failures"] += 1
        FAILED.append({"operation": case.operation.label, "method": case.method, "path": case.formatted_path,
                       "query": case.query, "status": response.status_code, "check": str(exc)[:2000]})
        raise
    assert api.still_signed_in() or (case.method.upper(), case.path) in SIGN_OUTS, \
        f"{case.method} {case.path} ended the run's session"


def test_the_checks_catch_an_answer_the_document_does_not_describe(api, tmp_path):
    """Guards the run above: the same checks, given a document that says `/api/me` answers with a
    field it does not send, fail on the real service's answer."""
    import yaml

    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    user = spec["components"]["schemas"]["User"]
    user["required"] = [*user.get("required", []), "no_such_field"]
    user.setdefault("properties", {})["no_such_field"] = {"type": "string"}
    changed = tmp_path / "openapi.yaml"
    changed.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    case = schemathesis.openapi.from_path(changed)["/api/me"]["GET"].Case()
    response = case.call(base_url=api.base_url, headers={"Authorization": f"Bearer {api.token}"}, timeout=30)
    assert response.status_code == 200
    with pytest.raises(FailureGroup, match='"no_such_field" is a required property'):
        case.validate_response(response, checks=CHECK_FUNCTIONS)

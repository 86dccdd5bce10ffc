"""docs/openapi.yaml describes exactly the routes the code serves."""

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from callrouter.config import ConsoleSettings
from callrouter.web.api import Api
from callrouter.web.console import ConsoleApi
from callrouter.web.service import served_routes
from callrouter.web.http import JSON_TYPES

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def routes():
    api = Api(None, None, None, None, dt.timedelta(hours=1))
    console = ConsoleApi(None, None, ConsoleSettings(), dt.timedelta(hours=1))
    return {(r.method.lower(), r.pattern): r for r in served_routes(api, console)}


def operations(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield method, path, item, op


def test_every_route_is_documented_and_every_documented_route_exists(spec, routes):
    documented = {(m, p) for m, p, _, _ in operations(spec)}
    assert documented - set(routes) == set(), "documented but not served"
    assert set(routes) - documented == set(), "served but not documented"


def test_security_and_permissions_match(spec, routes):
    for method, path, _, op in operations(spec):
        route = routes[(method, path)]
        public = op.get("security") == []
        assert public == (not route.authenticated), (method, path)
        if route.authenticated:
            assert "401" in op["responses"], (method, path)
            perms = [f"{m}:{a}" for m, a in route.permissions]
            assert op["x-permissions"] == perms, (method, path)
            if perms:
                assert "403" in op["responses"], (method, path)
        assert str(route.status) in op["responses"], (method, path)


def test_path_parameters_are_declared(spec, routes):
    for method, path, item, op in operations(spec):
        declared = set()
        for param in item.get("parameters", []) + op.get("parameters", []):
            param = resolve(spec, param)
            if param["in"] == "path":
                declared.add(param["name"])
        assert declared == set(re.findall(r"\{(\w+)\}", path)), (method, path)


def test_request_bodies_match_the_fields_the_code_accepts(spec, routes):
    for method, path, _, op in operations(spec):
        route = routes[(method, path)]
        if route.body is None:
            assert "requestBody" not in op, (method, path)
            continue
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert schema["additionalProperties"] is False
        assert set(schema["properties"]) == set(route.body), (method, path)
        required = {name for name, f in route.body.items() if f.required}
        assert set(schema["required"]) == required, (method, path)
        for name, f in route.body.items():
            prop = schema["properties"][name]
            assert prop["type"] == JSON_TYPES[f.type], (method, path, name)
            if f.choices is not None:
                assert prop["enum"] == list(f.choices), (method, path, name)
        for code in ("400", "413", "415"):
            assert code in op["responses"], (method, path, code)


def test_query_parameters_match(spec, routes):
    for method, path, _, op in operations(spec):
        route = routes[(method, path)]
        declared = {resolve(spec, p)["name"] for p in op.get("parameters", [])
                    if resolve(spec, p)["in"] == "query"}
        assert declared == set(route.query or ()), (method, path)
        if route.query:
            assert "400" in op["responses"]


def test_every_reference_resolves(spec):
    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                resolve(spec, node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)


def resolve(spec, node):
    if "$ref" not in node:
        return node
    target = spec
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return target

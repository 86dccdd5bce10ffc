"""The wallboard page and its assets as the server gives them: behind the sign-in, under the strict
CSP (no inline script or style anywhere, ES modules from this server only), French."""

from __future__ import annotations

import re
from importlib import resources

import pytest_twisted
from twisted.internet import reactor

from callrouter.web.router import Router
from callrouter.web.site import build_site
from web_support import MAX_BODY, Client

STATIC = resources.files("callrouter.web") / "static"
ASSETS = sorted(p.name for p in STATIC.iterdir() if p.name.startswith("wallboard."))


def test_the_page_has_no_inline_script_nor_style_and_names_only_its_own_modules():
    html = (STATIC / "wallboard.html").read_text(encoding="utf-8")
    assert '<html lang="fr">' in html
    assert "<style" not in html and " style=" not in html and "javascript:" not in html
    scripts = re.findall(r"<script[^>]*>", html)
    assert scripts == ['<script type="module" src="/static/wallboard.js">']
    for path in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
        assert path.removeprefix("/static/") in ASSETS, path
    for name in ASSETS:
        if name.endswith(".js"):
            code = (STATIC / name).read_text(encoding="utf-8")
            assert "innerHTML" not in code and "eval(" not in code and ".style" not in code, name
            for module in re.findall(r'from "([^"]+)"', code):
                assert module.startswith("/static/") and (STATIC / module.removeprefix("/static/")).is_file(), module


@pytest_twisted.inlineCallbacks
def test_the_wallboard_is_behind_the_sign_in_and_its_assets_are_served_under_the_csp(env):
    site = build_site(Router([], env.users.authenticate), reactor, reactor.getThreadPool(), reactor, MAX_BODY)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")
    client = Client(port.getHost().port)
    try:
        r = yield client.call("GET", "/wallboard")
        assert r.status == 302 and r.headers["location"] == "/console/connexion"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        r = yield client.call("GET", "/wallboard/connexion")
        assert r.status == 404
        for name in ASSETS:
            r = yield client.call("GET", f"/static/{name}")
            assert r.status == 200, name
            assert r.headers["content-type"].split(";")[0] in ("text/javascript", "text/css", "text/html"), name
            assert "unsafe-inline" not in r.headers["content-security-policy"]
    finally:
        yield port.stopListening()

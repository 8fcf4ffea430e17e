"""The console's pages over HTTP: login (rate limited), sessions, CSRF on every form, QR links, roles."""

from __future__ import annotations

import re
import ssl
from contextlib import closing
from pathlib import Path

import httpx

from bindery.settings import Settings, get_settings
from bindery.web.app import create_app as create_web
from tests.bindery.web.conftest import PASSWORD, Console
from tests.support import db
from tests.support.servers import serve
from tests.support.tls import make_tls
from tests.support.world import ADMIN, MEMBER


def csrf(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def login(console: Console, email: str, next_: str = "/") -> httpx.Client:
    browser = httpx.Client(base_url=console.url, timeout=30)
    page = browser.get("/login", params={"next": next_})
    done = browser.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf(page),
                                        "next": next_})
    assert done.status_code == 303 and done.headers["location"] == next_, done.text
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # plain http here
    return browser


def test_the_icon_is_served_where_browsers_look(console: Console) -> None:
    """Pages link the icon; /favicon.ico, which browsers ask for anyway, leads to it."""
    with httpx.Client(base_url=console.url, timeout=30) as browser:
        assert '<link rel="icon" href="/static/favicon.svg"' in browser.get("/login").text
        icon = browser.get("/favicon.ico", follow_redirects=True)
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.text.startswith("<svg") and "<script" not in icon.text


def test_qr_link_goes_through_login_and_keeps_the_bid(console: Console) -> None:
    with httpx.Client(base_url=console.url) as anonymous:
        first = anonymous.get("/cloud-id", params={"groupId": "W001"})
        assert first.status_code == 303 and first.headers["location"] == "/login?next=%2Fcloud-id%3FgroupId%3DW001"
    with closing(login(console, MEMBER, "/cloud-id?groupId=W001")) as member:
        page = member.get("/cloud-id", params={"groupId": "W001"})
        assert 'name="bid" value="W001"' in page.text and "cloud_api" not in page.text, "members get no API dropdown"
        bound = member.post("/bind", data={"bid": "W001", "csrf_token": csrf(page)}, follow_redirects=True)
        assert "bound batch W001 (12 devices) to Acme" in bound.text
    with closing(login(console, ADMIN, "/bind?bid=W002")) as admin:
        page = admin.get("/bind", params={"bid": "W002"})
        assert 'name="bid" value="W002"' in page.text and '<select name="cloud_api">' in page.text


def test_every_form_needs_the_sessions_csrf_token(console: Console, settings: Settings) -> None:
    with closing(login(console, ADMIN)) as admin:
        forged = admin.post("/bind", data={"bid": "W001", "csrf_token": "forged"})
        assert forged.status_code == 403 and "CSRF check failed" in forged.text
        missing = admin.post("/provisioning/cloud-apis", data={"kind": "aws-iot", "name": "x"})
        assert missing.status_code == 403
        logout = admin.post("/logout", data={})
        assert logout.status_code == 403
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM binding") == 0
    with httpx.Client(base_url=console.url) as stranger:  # a login form posted from elsewhere
        refused = stranger.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": "x"})
        assert refused.status_code == 403


def test_logins_are_rate_limited_and_audited(console: Console, settings: Settings) -> None:
    with httpx.Client(base_url=console.url) as browser:
        for attempt in range(6):
            page = browser.get("/login")
            answer = browser.post("/login", data={"email": MEMBER, "password": "wrong password!",
                                                  "csrf_token": csrf(page)})
            assert answer.status_code == (401 if attempt < 5 else 429), answer.text
        page = browser.get("/login")
        right = browser.post("/login", data={"email": MEMBER, "password": PASSWORD, "csrf_token": csrf(page)})
        assert right.status_code == 429 and "too many failed logins" in right.text
    assert db.scalar(settings.resolved_database_url,
                     "SELECT COUNT(*) FROM audit_event WHERE action = 'web.login_failed'") == 5


def test_members_get_no_admin_pages_and_logout_ends_the_session(console: Console) -> None:
    with closing(login(console, MEMBER)) as member:
        home = member.get("/")
        assert "Download manifest" not in home.text and "Provisioning</a>" not in home.text
        assert member.get("/provisioning").status_code == 403
        page = member.get("/bind")
        member.post("/bind", data={"bid": "W001", "csrf_token": csrf(page)})
        refused = member.get("/batches/W001/manifest.csv")
        assert refused.status_code == 403 and "only admins may export manifests" in refused.text
        member.post("/logout", data={"csrf_token": csrf(page)})
        assert member.get("/").status_code == 303


def test_provisioning_page_adds_apis_without_showing_secrets(console: Console) -> None:
    with closing(login(console, ADMIN)) as admin:
        page = admin.get("/provisioning")
        assert 'href="/provisioning/cloud-apis/new"' in page.text
        chooser = admin.get("/provisioning/cloud-apis/new")
        assert all(f'value="{kind}"' in chooser.text for kind in ("other", "aws", "azure", "aws-iot", "azure-iot-hub"))
        form = admin.get("/provisioning/cloud-apis/new", params={"kind": "other"})
        added = admin.post("/provisioning/cloud-apis", follow_redirects=True, data={
            "csrf_token": csrf(form), "kind": "other", "name": "lab", "type": "private cloud",
            "url": f"{console.receiver}/interop", "credentials": "bindery:pw-secret-value", "check": "on"})
        assert "added Product Cloud API lab (other)" in added.text and "pw-secret-value" not in added.text
        bad = admin.post("/provisioning/cloud-apis", follow_redirects=True, data={
            "csrf_token": csrf(page), "kind": "aws-iot", "name": "iot", "region": "mars-1"})
        assert "Region: &#39;mars-1&#39; is not an AWS region such as eu-central-1" in bad.text
        saved = admin.post("/provisioning/auto-provision", follow_redirects=True,
                           data={"csrf_token": csrf(page), "enabled": "on", "cloud_api": "lab"})
        assert "automatic provisioning on bind is on, into lab" in saved.text


def test_session_cookie_is_secure_over_https(console: Console, tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with serve(create_web(get_settings()), ssl={"cert": str(tls.cert), "key": str(tls.key)}) as url, \
            httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(tls.ca))) as browser:
        page = browser.get("/login")
        assert "Secure" in page.headers["set-cookie"]
        done = browser.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": csrf(page)})
        cookie = done.headers["set-cookie"]
        assert done.status_code == 303 and "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie

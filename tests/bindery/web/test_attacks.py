"""The console attacked as a hostile tenant or stranger would: real uvicorn, real requests, both databases.

Threat model (docs/security.md): the server operator is trusted; tenant admins, members and anonymous
callers are not. Nothing they send may reach the server's files, environment or another tenant.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import argon2
import httpx
import pytest
from sqlmodel import Session

from bindery import db as database
from bindery.access import actor_for
from bindery.clouds.config import get_cloud_api, secret_of
from bindery.receiver import ReceiverAuth, create_app
from bindery.settings import Settings, get_settings
from bindery.web.app import create_app as create_web
from tests.bindery.web.conftest import PASSWORD, Console
from tests.bindery.web.test_api import add_lab
from tests.bindery.web.test_pages import csrf, login
from tests.support import db
from tests.support.servers import serve
from tests.support.world import ADMIN, MEMBER, OTHER

PLANTED_TEXT = "planted-secret-7f3a"
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")


def headers_are_secure(response: httpx.Response) -> bool:
    return all(name in response.headers for name in SECURITY_HEADERS)


# 1. Secret indirection is a CLI feature: the web takes every string literally.

@pytest.mark.parametrize("template", ["x: @{file}", "x:\tenv:PLANTED_VARIABLE", "x:@{file}", "x:env:PLANTED_VARIABLE"])
def test_cloud_api_secret_is_sent_literally_never_read_from_a_server_file_or_variable(
        console: Console, tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch, template: str) -> None:
    planted = tmp_path / "planted.txt"
    planted.write_text(PLANTED_TEXT)
    monkeypatch.setenv("PLANTED_VARIABLE", PLANTED_TEXT)
    literal = template.format(file=planted)
    # a receiver that accepts exactly the literal string: a server that resolved it would be refused
    with serve(create_app(ReceiverAuth(basic=literal), tmp_path / "literal.db")) as target, \
            console.client(ADMIN) as admin:
        created = admin.post("/api/cloud-apis", json={
            "name": "literal", "kind": "other", "type": "AWS", "url": f"{target}/interop", "credentials": literal})
    assert created.status_code == 201, created.text
    assert PLANTED_TEXT not in created.text
    with Session(database.get_engine(settings)) as session:
        api = get_cloud_api(session=session, actor=actor_for(session=session, email=ADMIN), name="literal")
        assert secret_of(settings, api) == literal and PLANTED_TEXT not in literal


def test_secret_reference_cannot_probe_which_server_files_exist(console: Console, tmp_path: Path) -> None:
    planted = tmp_path / "exists.txt"
    planted.write_text(PLANTED_TEXT)
    answers = []
    with console.client(ADMIN) as admin:
        for value in (f" @{planted}", " @/nonexistent/x", f"@{planted}", "@/nonexistent/x"):
            answer = admin.post("/api/cloud-apis", json={"name": "probe", "kind": "other", "type": "AWS",
                                                         "url": f"{console.receiver}/interop", "credentials": value})
            answers.append((answer.status_code, answer.json()["detail"]))
    assert answers == [(422, "credentials: expected username:password")] * 4


def test_connection_string_from_the_web_is_literal(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLANTED_HUB", "HostName=evil;SharedAccessKeyName=a;SharedAccessKey=b")
    with console.client(ADMIN) as admin:
        answer = admin.post("/api/cloud-apis", json={"name": "hub", "kind": "azure-iot-hub",
                                                     "connection_string": "env:PLANTED_HUB", "check": False})
    assert answer.status_code == 422 and "missing HostName" in answer.json()["detail"]


def test_page_form_secret_is_literal_too(console: Console, tmp_path: Path) -> None:
    planted = tmp_path / "planted.txt"
    planted.write_text(PLANTED_TEXT)
    with closing(login(console, ADMIN, "/provisioning")) as admin:
        page = admin.get("/provisioning")
        answer = admin.post("/provisioning/cloud-apis", data={
            "csrf_token": csrf(page), "name": "form", "kind": "other", "type": "AWS",
            "url": f"{console.receiver}/interop", "credentials": f" @{planted}"}, follow_redirects=True)
    assert "Credentials: expected username:password" in answer.text and PLANTED_TEXT not in answer.text


# 2. An atomic login lockout, per email and per client address.

@contextmanager
def console_with(monkeypatch: pytest.MonkeyPatch, **env: str) -> Iterator[str]:
    """Another console on the same installation, started after ``env`` is set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with serve(create_web(get_settings())) as url:
        yield url


def concurrent_logins(url: str, email: str, passwords: list[str]) -> list[int]:
    """Each password from its own browser, all posted at once."""
    browsers = [httpx.Client(base_url=url, timeout=60) for _ in passwords]
    tokens = [csrf(browser.get("/login")) for browser in browsers]
    start = threading.Barrier(len(passwords))
    codes: list[int] = [0] * len(passwords)

    def attempt(index: int) -> None:
        start.wait()
        codes[index] = browsers[index].post("/login", data={
            "email": email, "password": passwords[index], "csrf_token": tokens[index]}).status_code

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(passwords))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for browser in browsers:
        browser.close()
    return codes


def failures_audited(settings: Settings) -> int:
    count = db.scalar(settings.resolved_database_url,
                      "SELECT COUNT(*) FROM audit_event WHERE action = 'web.login_failed'")
    return int(count)  # type: ignore[call-overload]


def test_thirty_concurrent_wrong_logins_check_at_most_five_passwords(console: Console, settings: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with console_with(monkeypatch, BINDERY_LOGIN_MAX_FAILURES_PER_CLIENT="1000") as url:
        codes = concurrent_logins(url, MEMBER, ["wrong password!"] * 30)
    assert codes.count(401) <= 5 and codes.count(401) + codes.count(429) == 30, codes
    assert failures_audited(settings) == codes.count(401) <= 5


def test_right_password_among_thirty_concurrent_guesses_gains_nothing(console: Console, settings: Settings,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with console_with(monkeypatch, BINDERY_LOGIN_MAX_FAILURES_PER_CLIENT="1000") as url:
        codes = concurrent_logins(url, MEMBER, ["wrong password!"] * 29 + [PASSWORD])
    assert codes.count(401) <= 5 and codes.count(303) <= 1 and set(codes) <= {401, 429, 303}, codes
    assert failures_audited(settings) == codes.count(401)


def test_one_client_address_cannot_spray_many_emails(console: Console, settings: Settings,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with console_with(monkeypatch, BINDERY_LOGIN_MAX_FAILURES_PER_CLIENT="6") as url, \
            httpx.Client(base_url=url, timeout=30) as browser:
        codes = []
        for number in range(9):
            token = csrf(browser.get("/login"))
            codes.append(browser.post("/login", data={"email": f"guess{number}@acme.io", "password": "nope nope",
                                                      "csrf_token": token}).status_code)
        token = csrf(browser.get("/login"))
        right = browser.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token})
    assert codes == [401] * 6 + [429] * 3 and right.status_code == 429


# 3. Constant-shape login: an unknown email costs what a wrong password costs.

def test_login_timing_does_not_tell_which_emails_exist(console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    """The work each wrong login does, counted: one argon2 verify, against a hash of the same cost, for a
    known email and an unknown one alike. Time is only a coarse second witness (a skipped verify halves it):
    the samples alternate, and the fastest of each kind is compared, which load can slow but not speed."""
    known = [f"timing{i}@acme.io" for i in range(12)]
    monkeypatch.setenv("TIMING_PASSWORD", PASSWORD)
    for email in known:
        console.cli.ok("user", "add", email, "--account", "Acme", "--role", "member")
        console.cli.ok("user", "set-password", email, "--password-env", "TIMING_PASSWORD")
    unknown = [f"nobody{i}@acme.io" for i in range(12)]
    verified: list[argon2.Parameters] = []
    real_verify = argon2.PasswordHasher.verify

    def counted_verify(hasher: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        verified.append(argon2.extract_parameters(hash if isinstance(hash, str) else hash.decode()))
        return real_verify(hasher, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counted_verify)
    work: dict[str, list[list[argon2.Parameters]]] = {"known": [], "unknown": []}
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    with console_with(monkeypatch, BINDERY_LOGIN_MAX_FAILURES_PER_CLIENT="1000") as url, \
            httpx.Client(base_url=url, timeout=30) as browser:
        for known_email, unknown_email in zip(known, unknown, strict=True):
            for kind, email in (("known", known_email), ("unknown", unknown_email)):
                token = csrf(browser.get("/login"))
                verified.clear()
                started = time.perf_counter()
                answer = browser.post("/login", data={"email": email, "password": "wrong password!",
                                                      "csrf_token": token})
                times[kind].append(time.perf_counter() - started)
                work[kind].append(list(verified))
                assert answer.status_code == 401 and "wrong email or password" in answer.text
    cost = argon2.extract_parameters(argon2.PasswordHasher().hash("x"))
    assert work == {"known": [[cost]] * 12, "unknown": [[cost]] * 12}, "one verify of one cost per login"
    fastest_known, fastest_unknown = min(times["known"]), min(times["unknown"])
    assert 0.5 < fastest_unknown / fastest_known < 2, times


# 4. Every request error is a 4xx with the security headers.

@pytest.mark.parametrize(("method", "path", "body"), [
    ("POST", "/api/batches", '{"bid": NaN}'),
    ("POST", "/api/batches", '{"bid": 1e999}'),
    ("POST", "/api/batches", '{"bid": -Infinity}'),
    ("PUT", "/api/settings/auto-provision", '{"enabled": NaN}'),
    ("POST", "/api/cloud-apis", '{"name": "x", "kind": "other", "quota": Infinity}'),
])
def test_non_standard_json_numbers_are_a_clean_422(console: Console, method: str, path: str, body: str) -> None:
    with console.client(ADMIN) as admin:
        answer = admin.request(method, path, content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and headers_are_secure(answer)
    detail = answer.json()["detail"]
    assert detail and all(set(item) == {"loc", "msg", "type"} for item in detail)
    assert "NaN" not in answer.text and "Infinity" not in answer.text


def test_malformed_json_is_a_clean_422(console: Console) -> None:
    with console.client(ADMIN) as admin:
        answer = admin.post("/api/batches", content=b'{"bid": "W001"', headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and headers_are_secure(answer) and "Traceback" not in answer.text


# 5. Page forms carry the API's limits; redirects carry no user input.

def test_huge_form_field_is_refused_with_a_short_redirect(console: Console, settings: Settings) -> None:
    with closing(login(console, ADMIN, "/provisioning")) as admin:
        page = admin.get("/provisioning")
        answer = admin.post("/provisioning/cloud-apis", data={
            "csrf_token": csrf(page), "name": "n" * 100_000, "kind": "aws-iot", "region": "eu-west-1",
            "policy": "Fleet"})
        assert answer.status_code == 422 and "location" not in answer.headers
        assert len(answer.headers.get("set-cookie", "")) < 1000 and len(answer.text) < 100_000
        shown = answer
    assert "Name: String should have at most 200 characters" in shown.text
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM cloud_api") == 0


def test_every_redirect_after_a_form_is_short(console: Console) -> None:
    with closing(login(console, ADMIN)) as admin:
        page = admin.get("/bind")
        answer = admin.post("/bind", data={"bid": "B" * 150, "csrf_token": csrf(page)})
        assert answer.status_code == 303 and answer.headers["location"] == "/bind"
        assert "invalid BID" in admin.get("/bind").text


# 6. No content spoofing: a link cannot make the console say anything.

SPOOF = "Your session expired. Call +1-555-0100"


@pytest.mark.parametrize("path", ["/login?error={text}", "/login?ok={text}"])
def test_login_page_shows_no_text_from_the_link(console: Console, path: str) -> None:
    with console.client(None) as anonymous:
        page = anonymous.get(path.format(text=SPOOF))
    assert page.status_code == 200 and "555-0100" not in page.text


@pytest.mark.parametrize("path", ["/bind?ok={text}", "/bind?error={text}", "/?ok={text}", "/provisioning?error={text}"])
def test_console_pages_show_no_text_from_the_link(console: Console, path: str) -> None:
    with closing(login(console, ADMIN)) as admin:
        page = admin.get(path.format(text=SPOOF))
    assert page.status_code == 200 and "555-0100" not in page.text


def test_flash_cookie_is_the_servers_own_and_shown_once(console: Console) -> None:
    with closing(login(console, ADMIN)) as admin:
        page = admin.get("/bind")
        done = admin.post("/bind", data={"bid": "W002", "csrf_token": csrf(page)})
        cookie = done.headers["set-cookie"]
        assert "bindery_flash=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "bound batch W002 (3 devices) to Acme" in admin.get("/bind").text
        assert "bound batch W002" not in admin.get("/bind").text, "a flash is shown once"


# The classes that held: tenants, roles, CSRF, sessions, redirects, escaping, traversal, body size.

def test_another_accounts_batch_job_and_api_are_answered_as_unknown(console: Console) -> None:
    assert add_lab(console).status_code == 201
    with console.client(ADMIN) as admin:
        job = admin.post("/api/batches", json={"bid": "W001", "cloud_api": "lab"}).json()["job"]
    with console.client(OTHER) as other:
        mine_unknown = other.get("/api/batches/NOPE")
        theirs = other.get("/api/batches/W001")
        assert theirs.status_code == mine_unknown.status_code == 404
        assert theirs.json()["detail"].replace("W001", "X") == mine_unknown.json()["detail"].replace("NOPE", "X")
        assert other.get(f"/api/jobs/{job['id']}").status_code == 404
        assert other.get("/api/cloud-apis/lab").status_code == 404
        assert other.post("/api/batches/W001/provision", json={"cloud_api": "lab"}).status_code == 404
        assert other.get("/api/batches/W001/manifest").status_code == 404


def test_member_cannot_do_what_admins_do(console: Console, settings: Settings) -> None:
    with console.client(MEMBER) as member:
        assert member.post("/api/cloud-apis", json={"name": "m", "kind": "aws-iot", "region": "eu-west-1",
                                                    "policy": "P", "check": False}).status_code == 403
        member.post("/api/batches", json={"bid": "W002"}).raise_for_status()
        assert member.get("/api/batches/W002/manifest").status_code == 403
        assert member.post("/api/batches/W002/provision", json={}).status_code == 403
    with closing(login(console, MEMBER)) as browser:
        assert browser.get("/provisioning").status_code == 403
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM cloud_api") == 0


def test_csrf_missing_foreign_and_cross_origin_are_refused(console: Console, settings: Settings) -> None:
    with closing(login(console, ADMIN)) as admin, closing(login(console, MEMBER)) as member:
        members_token = csrf(member.get("/bind"))
        assert admin.post("/bind", data={"bid": "W001"}).status_code == 403
        assert admin.post("/bind", data={"bid": "W001", "csrf_token": members_token}).status_code == 403
        cross_origin = admin.post("/bind", data={"bid": "W001", "csrf_token": "x"},
                                  headers={"Origin": "https://evil.example"})
        assert cross_origin.status_code == 403
    assert db.scalar(settings.resolved_database_url, "SELECT COUNT(*) FROM binding") == 0


def test_session_fixation_a_planted_cookie_never_becomes_the_session(console: Console) -> None:
    with httpx.Client(base_url=console.url, timeout=30) as browser:
        browser.cookies.set("bindery_session", "attacker-chosen-value")
        token = csrf(browser.get("/login"))
        done = browser.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token})
        assert done.status_code == 303
        issued = re.search(r"bindery_session=([^;]+)", done.headers["set-cookie"])
        assert issued and issued.group(1) != "attacker-chosen-value"
    with httpx.Client(base_url=console.url, cookies={"bindery_session": "attacker-chosen-value"}) as attacker:
        assert attacker.get("/").status_code == 303


def test_logout_ends_the_session_on_the_server(console: Console) -> None:
    browser = login(console, ADMIN)
    stolen = browser.cookies.get("bindery_session")
    assert browser.post("/logout", data={"csrf_token": csrf(browser.get("/"))}).status_code == 303
    browser.close()
    with httpx.Client(base_url=console.url, cookies={"bindery_session": stolen or ""}) as replay:
        answer = replay.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x",
                                    "/\t/evil.example", "/\n/evil.example", " //evil.example"])
def test_login_never_redirects_off_site(console: Console, target: str) -> None:
    with httpx.Client(base_url=console.url, timeout=30) as browser:
        token = csrf(browser.get("/login", params={"next": target}))
        done = browser.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": token,
                                            "next": target})
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_markup_in_bids_api_names_and_qr_text_is_escaped(console: Console) -> None:
    script = "<script>alert(1)</script>"
    with closing(login(console, ADMIN)) as admin:
        bind_page = admin.get("/bind", params={"bid": script})
        assert script not in bind_page.text and "&lt;script&gt;" in bind_page.text
        admin.post("/bind", data={"bid": script, "csrf_token": csrf(bind_page)})
        shown = admin.get("/bind")
        assert script not in shown.text and "invalid BID" in shown.text
        page = admin.get("/provisioning")
        listed = admin.post("/provisioning/cloud-apis", data={"csrf_token": csrf(page), "name": script,
                                                              "kind": "aws-iot", "region": "eu-west-1", "policy": "P"})
        assert script not in listed.text and "invalid Product Cloud API name" in listed.text
        qr_page = admin.get("/cloud-id", params={"groupId": script})
        assert script not in qr_page.text
    with console.client(ADMIN) as api_client:
        answer = api_client.post("/api/batches", json={"qr": f"https://x/bind?bid={script}"})
        assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("path", ["/static/../../../../etc/passwd", "/static/..%2f..%2f..%2fetc%2fpasswd",
                                  "/static/%2e%2e/%2e%2e/etc/passwd", "/api/batches/..%2F..%2Fetc%2Fpasswd"])
def test_path_traversal_reaches_no_server_file(console: Console, path: str) -> None:
    with console.client(ADMIN) as admin:
        answer = admin.get(path)
    assert answer.status_code == 404 and "root:" not in answer.text


def test_oversized_bodies_are_refused_before_they_are_read(console: Console) -> None:
    big = b'{"bid": "' + b"A" * (2 * 1024 * 1024) + b'"}'
    with console.client(ADMIN) as admin:
        declared = admin.post("/api/batches", content=big, headers={"Content-Type": "application/json"})
        assert declared.status_code == 413 and headers_are_secure(declared)

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(big), 65536):
                yield big[start:start + 65536]

        streamed = admin.post("/api/batches", content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413

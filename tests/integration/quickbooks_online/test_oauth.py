"""Intuit's OAuth server as emulated: discovery, grants, rotation, bearer checks, limits, faults."""

from __future__ import annotations

import base64
import datetime as dt
import tomllib
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

from connectors.quickbooks_online.sandbox import QuickBooksSandbox, start
from syncd.sandbox import Fault
from syncd.testing import FakeClock


def basic(qbo: QuickBooksSandbox, secret: str | None = None) -> str:
    raw = f"{qbo.client_id}:{secret if secret is not None else qbo.client_secret}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def token_call(qbo: QuickBooksSandbox, secret: str | None = None, **form: str) -> requests.Response:
    return requests.post(
        qbo.token_url,
        data=form,
        headers={"Authorization": basic(qbo, secret), "Accept": "application/json"},
        timeout=5,
    )


def test_discovery_document_points_at_the_emulator(qbo: QuickBooksSandbox) -> None:
    doc = requests.get(qbo.discovery_url, timeout=5).json()
    for key in (
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "issuer",
        "jwks_uri",
        "userinfo_endpoint",
    ):
        assert doc[key].startswith(qbo.base_url), key
    assert doc["token_endpoint"] == qbo.token_url
    assert doc["revocation_endpoint"] == qbo.revoke_url


def test_authorization_code_then_rotating_refresh(qbo: QuickBooksSandbox) -> None:
    redirect = "http://localhost:8765/callback?x=1"
    r = requests.get(
        qbo.authorize_url,
        params={
            "client_id": qbo.client_id,
            "response_type": "code",
            "scope": "com.intuit.quickbooks.accounting",
            "redirect_uri": redirect,
            "state": "st8",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    params = parse_qs(location.query)
    assert location.netloc == "localhost:8765"
    assert params["state"] == ["st8"]
    assert params["realmId"] == [qbo.realm_id]
    assert params["x"] == ["1"]
    code = params["code"][0]

    wrong = token_call(qbo, grant_type="authorization_code", code=code, redirect_uri="http://x/")
    assert (wrong.status_code, wrong.json()) == (400, {"error": "invalid_grant"})
    # a code is single use: the mismatched attempt above consumed it (emulator choice)
    again = token_call(qbo, grant_type="authorization_code", code=code, redirect_uri=redirect)
    assert again.status_code == 400

    r = requests.get(
        qbo.authorize_url,
        params={"client_id": qbo.client_id, "response_type": "code", "redirect_uri": redirect},
        allow_redirects=False,
        timeout=5,
    )
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    tokens = token_call(
        qbo, grant_type="authorization_code", code=code, redirect_uri=redirect
    ).json()
    assert tokens["token_type"] == "bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["x_refresh_token_expires_in"] == 8_726_400
    first_rt = tokens["refresh_token"]

    refreshed = token_call(qbo, grant_type="refresh_token", refresh_token=first_rt)
    assert refreshed.status_code == 200
    second_rt = refreshed.json()["refresh_token"]
    assert second_rt != first_rt  # rotates on every refresh by default
    stale = token_call(qbo, grant_type="refresh_token", refresh_token=first_rt)
    assert (stale.status_code, stale.json()) == (400, {"error": "invalid_grant"})
    assert token_call(qbo, grant_type="refresh_token", refresh_token=second_rt).ok

    access = refreshed.json()["access_token"]
    with requests.Session() as s:
        r = s.get(
            qbo.company_url + f"/companyinfo/{qbo.realm_id}",
            headers=qbo.headers(access),
            params={"minorversion": 75},
            timeout=5,
        )
    assert r.status_code == 200
    assert r.json()["CompanyInfo"]["CompanyName"]


def test_token_endpoint_refuses_bad_clients_and_grants(qbo: QuickBooksSandbox) -> None:
    rt = qbo.refresh_token
    r = token_call(qbo, secret="nope", grant_type="refresh_token", refresh_token=rt)
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")
    r = token_call(qbo, grant_type="password", username="u")
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_grant_type")
    r = requests.post(
        qbo.token_url,
        json={"grant_type": "refresh_token", "refresh_token": rt},
        headers={"Authorization": basic(qbo)},
        timeout=5,
    )
    assert (r.status_code, r.json()["error"]) == (400, "invalid_request")
    assert qbo.refresh_token == rt  # nothing rotated


def test_rotation_knobs_grace_and_expiry(clock: FakeClock) -> None:
    with QuickBooksSandbox(
        seed=1, customers=3, invoices=3, clock=clock, refresh_token_grace=60
    ) as qbo:
        old = qbo.refresh_token
        new = token_call(qbo, grant_type="refresh_token", refresh_token=old).json()
        assert new["refresh_token"] == qbo.refresh_token != old
        # within the grace window the old token still works and does not fork the chain
        again = token_call(qbo, grant_type="refresh_token", refresh_token=old).json()
        assert again["refresh_token"] == qbo.refresh_token
        clock.advance(61)
        assert token_call(qbo, grant_type="refresh_token", refresh_token=old).status_code == 400
        rotated = qbo.rotate_refresh_token()  # another worker refreshed
        assert rotated == qbo.refresh_token
        qbo.expire_refresh_token()
        r = token_call(qbo, grant_type="refresh_token", refresh_token=rotated)
        assert r.json() == {"error": "invalid_grant"}

    with QuickBooksSandbox(
        seed=1, customers=3, invoices=3, clock=clock, rotate_refresh_token_after=None
    ) as qbo:
        rt = qbo.refresh_token
        first = token_call(qbo, grant_type="refresh_token", refresh_token=rt).json()
        clock.advance(3600)
        second = token_call(qbo, grant_type="refresh_token", refresh_token=rt).json()
        assert first["refresh_token"] == second["refresh_token"] == rt
        assert second["x_refresh_token_expires_in"] == first["x_refresh_token_expires_in"] - 3600


def test_revoke_kills_the_grant(qbo: QuickBooksSandbox) -> None:
    access = qbo.issue_access_token()
    rt = qbo.refresh_token
    r = requests.post(
        qbo.revoke_url, json={"token": rt}, headers={"Authorization": basic(qbo)}, timeout=5
    )
    assert (r.status_code, r.content) == (200, b"")
    assert token_call(qbo, grant_type="refresh_token", refresh_token=rt).status_code == 400
    r = requests.get(qbo.company_url + "/customer/1", headers=qbo.headers(access), timeout=5)
    assert r.status_code == 401


def auth_error(r: requests.Response) -> dict[str, Any]:
    body: dict[str, Any] = r.json()
    assert "Fault" not in body
    error: dict[str, Any] = body["fault"]["error"][0]
    return error


def test_bearer_checks(qbo: QuickBooksSandbox, clock: FakeClock) -> None:
    url = qbo.company_url + "/customer/1"
    with requests.Session() as s:
        r = s.get(url, timeout=5)
        assert r.status_code == 401
        assert auth_error(r)["code"] == "3200"
        assert r.json()["fault"]["type"] == "AUTHENTICATION"
        assert "AuthenticationFailed" in auth_error(r)["message"]
        r = s.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=5)
        assert r.status_code == 401
        assert "Malformed" in auth_error(r)["detail"]

        access = qbo.issue_access_token()
        assert s.get(url, headers=qbo.headers(access), timeout=5).status_code == 200
        other_realm = f"{qbo.api_url}/company/123/customer/1"
        r = s.get(other_realm, headers=qbo.headers(access), timeout=5)
        assert r.status_code == 403
        assert auth_error(r)["code"] == "3100"
        assert "AuthorizationFailed" in auth_error(r)["message"]

        clock.advance(3600)  # access tokens live one hour
        r = s.get(url, headers=qbo.headers(access), timeout=5)
        assert r.status_code == 401
        assert auth_error(r)["detail"] == "Token expired"

        fresh = qbo.issue_access_token()
        qbo.expire_access_tokens()  # the knob: expire every token early
        assert s.get(url, headers=qbo.headers(fresh), timeout=5).status_code == 401


def test_minorversion(qbo: QuickBooksSandbox) -> None:
    url = qbo.company_url + "/customer/1"
    with requests.Session() as s:
        s.headers.update(qbo.headers())
        assert s.get(url, timeout=5).status_code == 200
        assert s.get(url, params={"minorversion": 75}, timeout=5).status_code == 200
        assert s.get(url, params={"minorversion": 80}, timeout=5).status_code == 200
        for bad in ("74", "4", "abc"):
            r = s.get(url, params={"minorversion": bad}, timeout=5)
            assert r.status_code == 400
            assert r.json()["Fault"]["type"] == "ValidationFault"
            assert r.json()["Fault"]["Error"][0]["element"] == "minorversion"


def test_throttle_answers_xml_429(clock: FakeClock) -> None:
    now = [0.0]
    with (
        QuickBooksSandbox(
            seed=1, customers=3, invoices=3, clock=clock, per_minute=25, monotonic=lambda: now[0]
        ) as qbo,
        requests.Session() as s,
    ):
        s.headers.update(qbo.headers())
        url = qbo.company_url + "/customer/1"
        statuses = [s.get(url, timeout=5).status_code for _ in range(12)]
        assert statuses == [200] * 10 + [429] * 2  # 10 requests per second per realm
        r = s.get(url, timeout=5)
        assert r.status_code == 429
        assert r.headers["Content-Type"].startswith("application/xml")  # even for JSON clients
        assert b"ThrottleExceeded" in r.content
        assert b'<Error code="3001">' in r.content
        assert "Retry-After" not in r.headers
        now[0] = 1.01  # a second later: 10 more
        assert [s.get(url, timeout=5).status_code for _ in range(10)] == [200] * 10
        now[0] = 2.02  # the minute window (25 here, 500 by default) fills up
        statuses = [s.get(url, timeout=5).status_code for _ in range(6)]
        assert statuses == [200] * 5 + [429]
        now[0] = 60.5  # the first second's requests left the window
        assert s.get(url, timeout=5).status_code == 200
        assert qbo.throttle.refused == 4


def test_injected_faults_speak_intuit(qbo: QuickBooksSandbox) -> None:
    url = qbo.company_url + "/customer/1"
    with requests.Session() as s:
        s.headers.update(qbo.headers())
        qbo.faults.inject(Fault.RATE_LIMIT, route="/customer/1", retry_after=2)
        r = s.get(url, timeout=5)
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "2"
        assert b"ThrottleExceeded" in r.content
        qbo.faults.inject(Fault.SERVER_ERROR, route="/customer/1", status=503)
        r = s.get(url, timeout=5)
        assert r.status_code == 503
        assert r.json()["Fault"]["type"] == "SystemFault"
        assert r.json()["Fault"]["Error"][0]["code"] == "10000"
        qbo.faults.inject(Fault.EXPIRED_TOKEN, route="/customer/1")
        r = s.get(url, timeout=5)
        assert r.status_code == 401
        assert auth_error(r)["code"] == "3200"
        assert s.get(url, timeout=5).status_code == 200


def test_config_snippet_and_factory() -> None:
    qbo = start(seed=2, customers=5, invoices=5)
    try:
        snippet = qbo.config_snippet("books")
        conn = tomllib.loads(snippet)["connections"]["books"]
        assert conn == {
            "connector": "quickbooks_online",
            "realm_id": qbo.realm_id,
            "client_id": qbo.client_id,
            "client_secret": qbo.client_secret,
            "refresh_token": qbo.refresh_token,
            "environment": "sandbox",
            "base_url": qbo.base_url,
            "token_url": qbo.token_url,
            "discovery_url": qbo.discovery_url,
        }
        doc = requests.get(conn["discovery_url"], timeout=5).json()
        assert doc["token_endpoint"] == conn["token_url"]
    finally:
        qbo.stop()


def test_seed_is_deterministic() -> None:
    clock = FakeClock(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    a = QuickBooksSandbox(seed=5, customers=10, invoices=30, clock=clock)
    b = QuickBooksSandbox(seed=5, customers=10, invoices=30, clock=clock)
    assert a.all_invoices() == b.all_invoices()
    assert a.all_payments() == b.all_payments()
    assert a.refresh_token == b.refresh_token

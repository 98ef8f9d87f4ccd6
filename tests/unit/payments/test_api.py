"""The payments HTTP API, served by the daemon's app over loopback: same checks as the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import requests
from sqlalchemy.engine import Engine

from syncd.api import ApiServer, create_app
from syncd.config.models import ConnectionSettings, DaemonSettings, Settings
from syncd.metrics import Metrics
from syncd.payments.api import router
from syncd.testing import FakeClock

TOKEN = "t" * 32


class Scheduler:
    running = True
    started_at = None

    def job_count(self) -> int:
        return 0


@pytest.fixture
def api(engine: Engine, clock: FakeClock, add_invoice: Callable[..., None]) -> Iterator[str]:
    add_invoice("qb", "Q1", "1001")
    settings = Settings(
        daemon=DaemonSettings(api_token=TOKEN),  # type: ignore[arg-type]
        connections={"qb": ConnectionSettings(name="qb", connector="fake", receives_payments=True)},
    )
    app = create_app(
        settings, engine, Scheduler(), routers=[router], clock=clock, metrics=Metrics()
    )
    server = ApiServer.bind("127.0.0.1", 0)
    server.start(app)
    try:
        yield server.url
    finally:
        server.stop()


def post(url: str, body: dict[str, object], token: str = TOKEN) -> requests.Response:
    return requests.post(
        f"{url}/payments", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_record_over_http(api: str) -> None:
    body = {"invoice_number": "1001", "amount": "40.00", "reference": "ch_1", "method": "card"}
    created = post(api, body)
    assert created.status_code == 201, created.text
    payment = created.json()["payment"]
    assert created.json()["outcome"] == "recorded" and payment["amount"] == "40.00"
    assert [p["status"] for p in payment["pushes"]] == ["queued"]
    again = post(api, body)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    shown = requests.get(
        f"{api}/payments/{payment['id']}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert shown.json()["reference"] == "ch_1"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"invoice_number": "1001", "amount": "12.345"}, "more decimals than USD allows"),
        ({"invoice_number": "1001", "amount": "200"}, "still open on invoice 1001"),
        ({"invoice_number": "4242", "amount": "5"}, "invoice 4242 is not in the store"),
    ],
)
def test_refusals_are_422_with_the_reason(api: str, body: dict[str, object], fragment: str) -> None:
    refused = post(api, body)
    assert refused.status_code == 422 and fragment in refused.json()["detail"]


def test_the_api_needs_the_token(api: str) -> None:
    assert (
        post(api, {"invoice_number": "1001", "amount": "1"}, token="wrong" * 8).status_code == 401
    )
    assert requests.get(f"{api}/payments/1", timeout=10).status_code == 401

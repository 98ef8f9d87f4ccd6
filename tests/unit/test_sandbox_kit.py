"""The sandbox kit over real loopback HTTP: router, request log, every fault kind, clean stop."""

from __future__ import annotations

import threading
import time
import tomllib
from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from syncd.sandbox import (
    AWKWARD_NAMES,
    Fault,
    Request,
    Response,
    Router,
    Sandbox,
    SandboxServer,
    SeededData,
    toml_string,
    toml_table,
)
from syncd.sandbox.routing import HTTPError, compile_pattern

BIG = {"items": [{"id": i, "name": f"item {i}"} for i in range(200)]}


def _items(request: Request) -> Response:
    return Response.json_body(BIG)


def _item(request: Request) -> Response:
    return Response.json_body({"id": int(request.params["id"])})


def _echo(request: Request) -> Response:
    return Response.json_body(
        {
            "method": request.method,
            "query": request.query,
            "json": request.json(),
            "client": request.header("X-Client"),
            "url": request.url,
        },
        201,
    )


def _teapot(request: Request) -> Response:
    raise HTTPError(Response.json_body({"code": "Teapot"}, 418))


def _boom(request: Request) -> Response:
    raise RuntimeError("handler bug")


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    srv = SandboxServer()
    srv.router.add("GET", "/items", _items)
    srv.router.add("GET", "/items/{id:int}", _item)
    srv.router.add("POST", "/echo", _echo)
    srv.router.add("GET", r"^/re/(?P<word>[a-z]+)$", lambda r: Response.text(r.params["word"]))
    srv.router.add("GET", "/teapot", _teapot)
    srv.router.add("GET", "/boom", _boom)
    with srv:
        yield srv


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


# -- router ----------------------------------------------------------------------------------


def test_compile_pattern_styles() -> None:
    assert compile_pattern("/a/{id:int}").match("/a/12")
    assert not compile_pattern("/a/{id:int}").match("/a/x")
    assert compile_pattern("/a/{name}/b").match("/a/x.y/b")
    assert not compile_pattern("/a/{name}/b").match("/a/x/y/b")
    assert compile_pattern("/f/{rest:path}").match("/f/x/y/z")
    assert compile_pattern("/v4_6_release/apis").match("/v4_6_release/apis")
    assert not compile_pattern("/a.b").match("/axb")  # literal parts are escaped


def test_router_first_match_wins_and_decorator() -> None:
    router = Router()

    @router.route("GET", "/x/count")
    def count(request: Request) -> Response:
        return Response.text("count")

    router.add("GET", "/x/{id}", lambda r: Response.text("item"))
    match = router.match("GET", "/x/count")
    assert match is not None
    assert match.route.handler is count
    assert match.route.key == "GET /x/count"
    assert router.match("POST", "/x/count") is None
    assert router.allowed("/x/7") == ["GET"]


def test_routes_params_query_and_json(server: SandboxServer, http: requests.Session) -> None:
    r = http.get(server.base_url + "/items/42")
    assert r.status_code == 200
    assert r.json() == {"id": 42}
    r = http.post(server.base_url + "/echo?a=1&b=x%20y", json={"k": "é"}, headers={"X-Client": "t"})
    assert r.status_code == 201
    body = r.json()
    assert body["query"] == {"a": "1", "b": "x y"}
    assert body["json"] == {"k": "é"}
    assert body["client"] == "t"
    assert body["url"] == server.base_url + "/echo?a=1&b=x%20y"
    assert http.get(server.base_url + "/re/abc").text == "abc"


def test_unmatched_is_404_json_and_wrong_method_405(
    server: SandboxServer, http: requests.Session
) -> None:
    r = http.get(server.base_url + "/nope")
    assert r.status_code == 404
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["code"] == "NotFound"
    r = http.delete(server.base_url + "/items")
    assert r.status_code == 405
    assert r.headers["Allow"] == "GET"


def test_http_error_and_handler_crash(server: SandboxServer, http: requests.Session) -> None:
    assert http.get(server.base_url + "/teapot").status_code == 418
    r = http.get(server.base_url + "/boom")
    assert r.status_code == 500
    assert "handler bug" in r.json()["message"]
    assert len(server.errors) == 1
    server.errors.clear()
    r = http.post(server.base_url + "/echo", data=b"{not json", headers={"X-Client": "t"})
    assert r.status_code == 400


# -- request log -----------------------------------------------------------------------------


def test_request_log_masks_authorization(server: SandboxServer, http: requests.Session) -> None:
    http.get(server.base_url + "/items?page=2", auth=("user", "secret-password"))
    http.get(server.base_url + "/nope", headers={"Authorization": "Bearer abc.def"})
    entries = server.log.entries
    assert [(e.method, e.path, e.status) for e in entries] == [
        ("GET", "/items", 200),
        ("GET", "/nope", 404),
    ]
    assert entries[0].query == {"page": "2"}
    assert entries[0].headers["authorization"] == "Basic ***"
    assert entries[1].headers["authorization"] == "Bearer ***"
    assert "secret" not in repr(entries)
    assert entries[0].route == "GET /items"
    assert server.log.find(path="/items", status=200) == [entries[0]]
    server.log.clear()
    assert len(server.log) == 0


def test_request_log_is_thread_safe(server: SandboxServer) -> None:
    def worker() -> None:
        with requests.Session() as s:
            for _ in range(10):
                s.get(server.base_url + "/items/1")

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.log.find(path="/items/1", status=200)) == 50


# -- faults ----------------------------------------------------------------------------------


def test_rate_limit_with_retry_after_then_recovers(
    server: SandboxServer, http: requests.Session
) -> None:
    server.faults.inject(Fault.RATE_LIMIT, route="GET /items", times=2, retry_after=2)
    for _ in range(2):
        r = http.get(server.base_url + "/items")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "2"
    assert http.get(server.base_url + "/items").status_code == 200
    assert server.faults.counts == {Fault.RATE_LIMIT: 2}
    assert [e.fault for e in server.log.entries] == [Fault.RATE_LIMIT, Fault.RATE_LIMIT, None]


def test_fault_route_scoping(server: SandboxServer, http: requests.Session) -> None:
    server.faults.inject(Fault.SERVER_ERROR, route="/items/{id:int}", times=None, status=503)
    assert http.get(server.base_url + "/items").status_code == 200
    assert http.get(server.base_url + "/items/1").status_code == 503
    assert http.get(server.base_url + "/items/2").status_code == 503
    server.faults.inject(Fault.SERVER_ERROR, route="POST", status=502)
    server.faults.clear()
    assert http.get(server.base_url + "/items/1").status_code == 200
    assert server.faults.count(Fault.SERVER_ERROR) == 2


def test_server_error_status_and_message(server: SandboxServer, http: requests.Session) -> None:
    server.faults.inject(Fault.SERVER_ERROR, status=504, message="upstream timeout")
    r = http.get(server.base_url + "/items")
    assert r.status_code == 504
    assert "timeout" in r.text


def test_slow_response_beats_client_timeout(server: SandboxServer, http: requests.Session) -> None:
    server.faults.inject(Fault.SLOW, delay=0.6)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(server.base_url + "/items", timeout=(2, 0.15))
    assert time.monotonic() - started < 0.5
    assert server.faults.count(Fault.SLOW) == 1
    time.sleep(0.6)  # the server finishes its late answer into a closed socket
    assert http.get(server.base_url + "/items", timeout=2).status_code == 200
    assert server.errors == []


def test_dropped_connection(server: SandboxServer, http: requests.Session) -> None:
    server.faults.inject(Fault.DROP, route="GET /items")
    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(server.base_url + "/items", timeout=2)
    assert server.log.entries[-1].status is None
    assert server.log.entries[-1].fault is Fault.DROP
    assert http.get(server.base_url + "/items", timeout=2).status_code == 200


def test_truncated_body(server: SandboxServer, http: requests.Session) -> None:
    server.faults.inject(Fault.TRUNCATE, route="GET /items")
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.get(server.base_url + "/items", timeout=2)
    r = http.get(server.base_url + "/items", timeout=2)
    assert r.json() == BIG


def test_expired_token(server: SandboxServer, http: requests.Session) -> None:
    server.faults.inject(Fault.EXPIRED_TOKEN)
    r = http.get(server.base_url + "/items")
    assert r.status_code == 401
    assert "invalid_token" in r.headers["WWW-Authenticate"]


def test_churn_calls_the_hook_then_serves(server: SandboxServer, http: requests.Session) -> None:
    seen: list[str] = []
    server.faults.churn_hook = lambda request: seen.append(request.path)
    server.faults.inject(Fault.CHURN, route="GET /items")
    assert http.get(server.base_url + "/items").status_code == 200
    assert seen == ["/items"]
    assert server.faults.counts == {Fault.CHURN: 1}


def test_random_faults_are_seeded_and_counted(server: SandboxServer) -> None:
    def run() -> tuple[list[int | None], dict[Fault, int]]:
        server.faults.reset_counts()
        server.faults.random(0.5, [Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.DROP], seed=7)
        statuses: list[int | None] = []
        with requests.Session() as s:
            for _ in range(30):
                try:
                    statuses.append(s.get(server.base_url + "/items/1", timeout=2).status_code)
                except requests.exceptions.ConnectionError:
                    statuses.append(None)
        server.faults.stop_random()
        return statuses, server.faults.counts

    first, counts = run()
    second, counts_again = run()
    assert first == second
    assert counts == counts_again
    failed = sum(1 for s in first if s != 200)
    assert failed == sum(counts.values()) > 0
    assert counts.get(Fault.DROP, 0) == first.count(None)
    assert set(counts) <= {Fault.RATE_LIMIT, Fault.SERVER_ERROR, Fault.DROP}


def test_random_faults_respect_route_and_exclude(
    server: SandboxServer, http: requests.Session
) -> None:
    server.faults.random(1.0, [Fault.SERVER_ERROR], route="GET", exclude=["/items/{id:int}"])
    assert http.get(server.base_url + "/items/3").status_code == 200
    assert http.get(server.base_url + "/items").status_code == 500
    assert http.post(server.base_url + "/echo", json={}).status_code == 201


def test_fault_argument_validation(server: SandboxServer) -> None:
    with pytest.raises(ValueError, match="times"):
        server.faults.inject(Fault.DROP, times=0)
    with pytest.raises(ValueError, match="rate"):
        server.faults.random(1.5)
    rule = server.faults.inject(Fault.DROP, times=3)
    assert server.faults.pending == [rule]


def test_page_served_callbacks(server: SandboxServer, http: requests.Session) -> None:
    calls: list[tuple[str, object]] = []

    def serve_page(request: Request) -> Response:
        server.page_served(request, {"page": request.query.get("page")})
        return Response.json_body([])

    server.router.add("GET", "/pages", serve_page)
    server.on_page_served(lambda request, info: calls.append((request.path, info)))
    http.get(server.base_url + "/pages?page=1")
    http.get(server.base_url + "/pages?page=2")
    assert calls == [("/pages", {"page": "1"}), ("/pages", {"page": "2"})]
    server.clear_page_callbacks()
    http.get(server.base_url + "/pages?page=3")
    assert len(calls) == 2


# -- lifecycle -------------------------------------------------------------------------------


def test_stop_with_open_keep_alive_connection_and_slow_handler() -> None:
    srv = SandboxServer()
    srv.router.add("GET", "/items", _items)
    srv.start()
    base = srv.base_url
    session = requests.Session()
    assert session.get(base + "/items").status_code == 200  # connection stays open (keep-alive)
    srv.faults.inject(Fault.SLOW, delay=30)
    outcome: list[BaseException] = []

    def slow_client() -> None:
        try:
            requests.get(base + "/items", timeout=5)
        except requests.exceptions.RequestException as exc:
            outcome.append(exc)

    slow = threading.Thread(target=slow_client)
    slow.start()
    time.sleep(0.2)
    started = time.monotonic()
    srv.stop()
    assert time.monotonic() - started < 2
    slow.join(5)
    assert not slow.is_alive()
    assert len(outcome) == 1  # the client saw the connection close, not a late answer
    srv.stop()  # twice is fine
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(base + "/items", timeout=1)
    session.close()
    assert not srv.running


def test_restart_gets_a_new_port() -> None:
    srv = SandboxServer()
    srv.router.add("GET", "/items/{id:int}", _item)
    with srv:
        first = srv.base_url
        assert requests.get(first + "/items/1", timeout=2).json() == {"id": 1}
    with srv:
        assert requests.get(srv.base_url + "/items/2", timeout=2).json() == {"id": 2}


# -- data & sandbox base ---------------------------------------------------------------------


def test_seeded_data_is_deterministic() -> None:
    def draw(seed: int) -> list[object]:
        d = SeededData(seed)
        return [d.company_name(), d.person(), d.money(1, 100), d.integer(1, 9), d.token(8)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    assert isinstance(draw(3)[2], Decimal)
    assert SeededData(1).money(1, 2).as_tuple().exponent == -2


def test_awkward_names_cover_the_hard_characters() -> None:
    joined = "".join(AWKWARD_NAMES)
    for ch in ['"', "'", "&", "\\", "%", "_", ",", "é", "☃"]:
        assert ch in joined
    assert SeededData.awkward_name(0) == AWKWARD_NAMES[0]
    taken: set[str] = set()
    assert SeededData.identifier('The "Quoted" Company', taken) == "TheQuotedCompany"
    assert SeededData.identifier("the quoted company", taken) == "thequotedcompany2"
    assert SeededData.email("Zoë O'Neil", "Café & Co") == "zoe.o.neil@cafeco.example"


def test_toml_helpers_round_trip() -> None:
    nasty = 'a "quoted" \\ back\tslash\nnewline é \x01'
    assert tomllib.loads(f"v = {toml_string(nasty)}")["v"] == nasty
    snippet = toml_table(
        ("connections", "my cw"), {"site": "http://x", "n": 3, "on": True, "no": None}
    )
    assert tomllib.loads(snippet) == {
        "connections": {"my cw": {"site": "http://x", "n": 3, "on": True}}
    }


class _EchoSandbox(Sandbox):
    name = "echo"

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.router.add("GET", "/seed", lambda r: Response.json_body({"seed": self.seed}))

    def fault_response(self, kind: Fault, request: Request, rule: object) -> Response:
        return Response.json_body({"vendor": "echo", "kind": str(kind)}, 429)

    def config_snippet(self, connection_name: str) -> str:
        return toml_table(("connections", connection_name), {"site": self.base_url})


def test_sandbox_base_class() -> None:
    with _EchoSandbox(seed=9) as sb:
        assert requests.get(sb.base_url + "/seed", timeout=2).json() == {"seed": 9}
        sb.faults.inject(Fault.RATE_LIMIT)
        r = requests.get(sb.base_url + "/seed", timeout=2)
        assert r.json() == {"vendor": "echo", "kind": "rate_limit"}
        assert sb.log.entries[-1].fault is Fault.RATE_LIMIT
        conf = tomllib.loads(sb.config_snippet("demo"))
        assert conf["connections"]["demo"]["site"] == sb.base_url

"""Client-side rate limits: windows, concurrency, shared 429 pauses, the per-tenant registry."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
import responses

from syncd.clock import Clock, SystemClock
from syncd.errors import RateLimited
from syncd.http import HttpClient
from syncd.ratelimit import (
    REGISTRY,
    Limiter,
    LimiterRegistry,
    Limits,
    RateLimiter,
    get_limiter,
)
from syncd.redact import Redactor
from syncd.testing import FakeClock

BASE = "https://api.vendor.test/v1"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def take(limiter: Limiter, n: int = 1) -> None:
    for _ in range(n):
        limiter.acquire()
        limiter.release()


# -- Limits ------------------------------------------------------------------------------------


def test_limits_per_reads_like_the_vendor_docs() -> None:
    limits = Limits.per(minute=500, day=10_000, concurrency=10)
    assert limits == Limits(windows=((500, 60.0), (10_000, 86_400.0)), max_concurrency=10)
    assert limits.history == 10_000


def test_limits_accept_lists_from_config() -> None:
    assert Limits(windows=[[5, 1]]).windows == ((5, 1.0),)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [{"windows": ((0, 60),)}, {"windows": ((5, 0),)}, {"max_concurrency": 0}],
    ids=["count", "seconds", "concurrency"],
)
def test_limits_are_validated(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r">= 1|> 0"):
        Limits(**kwargs)


# -- windows -----------------------------------------------------------------------------------


def test_n_plus_first_request_in_a_minute_waits_for_the_window(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits.per(minute=3), clock)
    take(limiter, 3)
    assert clock.slept == []

    waited = limiter.acquire()

    assert waited == 60.0
    assert clock.slept == [60.0]
    assert limiter.waited_seconds == 60.0


def test_window_slides_rather_than_resetting(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits(windows=((2, 60),)), clock)
    take(limiter)  # t=0
    clock.advance(30)
    take(limiter)  # t=30
    take(limiter)  # the t=0 grant leaves the window at t=60
    assert clock.monotonic() == 60.0
    take(limiter)  # the t=30 grant leaves at t=90
    assert clock.monotonic() == 90.0
    assert clock.slept == [30.0, 30.0]


def test_every_window_is_respected(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits(windows=((2, 1), (3, 60))), clock)
    take(limiter, 4)
    # 2 at t=0; the 3rd waits for the 1-second window; the 4th for the 60-second one.
    assert clock.slept == [1.0, 59.0]


def test_no_windows_means_no_waiting(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits(), clock)
    take(limiter, 1000)
    assert clock.slept == []


def test_windows_hold_under_concurrent_callers() -> None:
    """Real clock: 9 grants at 3 per 0.3s cannot finish before 0.6s, however many threads ask."""
    limiter = RateLimiter(Limits(windows=((3, 0.3),)), SystemClock())
    started = time.perf_counter()
    threads = [threading.Thread(target=take, args=(limiter, 3)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 0.59 <= time.perf_counter() - started < 2.0


# -- concurrency -------------------------------------------------------------------------------


def test_concurrency_limit_is_enforced_across_threads(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits(max_concurrency=2), clock)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def work() -> None:
        with limiter.slot():
            with lock:
                state["now"] += 1
                state["peak"] = max(state["peak"], state["now"])
            time.sleep(0.02)
            with lock:
                state["now"] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert state["peak"] == 2
    assert limiter.in_flight == 0


def test_raising_more_concurrency_wakes_waiters(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits(max_concurrency=1), clock)
    limiter.acquire()
    done = threading.Event()

    def second() -> None:
        limiter.acquire()
        done.set()

    thread = threading.Thread(target=second)
    thread.start()
    assert not done.wait(0.05)
    limiter.reconfigure(Limits(max_concurrency=2))
    assert done.wait(1.0)
    thread.join()


def test_slot_is_given_back_when_the_wait_is_interrupted() -> None:
    class Interrupted(Exception):
        pass

    class StopClock(FakeClock):
        def sleep(self, seconds: float) -> None:
            raise Interrupted

    clock: Clock = StopClock()
    limiter = RateLimiter(Limits(windows=((1, 60),), max_concurrency=1), clock)
    take(limiter)
    with pytest.raises(Interrupted):
        limiter.acquire()
    assert limiter.in_flight == 0


# -- server-side 429 pauses the tenant ---------------------------------------------------------


def test_pause_holds_the_next_request(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits(), clock)
    limiter.pause(10)
    limiter.pause(3)  # a shorter pause never shortens a longer one
    assert limiter.acquire() == 10.0
    assert clock.slept == [10.0]


def test_429_pause_is_shared_by_two_clients_of_one_tenant(clock: FakeClock) -> None:
    registry = LimiterRegistry()
    key = ("vendorx", "tenant-1")

    def tenant_client(connection: str) -> HttpClient:
        return HttpClient(
            BASE,
            connection=connection,
            vendor="vendorx",
            clock=clock,
            redactor=Redactor(),
            limiter=registry.get(key, Limits.per(minute=100), clock),
            max_attempts=1,
        )

    first, second = tenant_client("job-a"), tenant_client("job-b")
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add("GET", f"{BASE}/a", status=429, headers={"Retry-After": "10"})
        rsps.add("GET", f"{BASE}/b", json={"ok": True})
        with pytest.raises(RateLimited):
            first.get_json("/a")
        assert clock.slept == []

        assert second.get_json("/b") == {"ok": True}

    assert clock.slept == [10.0]
    assert registry.get(key, Limits.per(minute=100)).waited_seconds == 10.0


def test_client_sleeps_when_the_minute_budget_is_spent(clock: FakeClock) -> None:
    limiter = RateLimiter(Limits.per(minute=2), clock)
    c = HttpClient(
        BASE, connection="c", vendor="vendorx", clock=clock, redactor=Redactor(), limiter=limiter
    )
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rsps:
        rsps.add("GET", f"{BASE}/x", json={})
        for _ in range(3):
            c.get_json("/x")
    assert clock.slept == [60.0]
    assert c.requests_made == 3
    assert limiter.in_flight == 0


# -- registry ----------------------------------------------------------------------------------


def test_registry_gives_one_limiter_per_tenant(clock: FakeClock) -> None:
    registry = LimiterRegistry()
    limits = Limits.per(minute=500, concurrency=10)
    a = registry.get(("quickbooks", "realm-1"), limits, clock)
    assert registry.get(("quickbooks", "realm-1"), limits, clock) is a
    assert registry.get(("quickbooks", "realm-2"), limits, clock) is not a


def test_registry_adopts_new_limits_and_keeps_history(clock: FakeClock) -> None:
    registry = LimiterRegistry()
    limiter = registry.get("t", Limits.per(minute=5), clock)
    take(limiter, 2)
    same = registry.get("t", Limits.per(minute=2), clock)
    assert same is limiter
    assert same.limits == Limits.per(minute=2)
    take(same)
    assert clock.slept == [60.0]  # the two earlier grants still count


def test_registry_factory_is_the_seam_for_other_limiters(clock: FakeClock) -> None:
    made: list[Limits] = []

    def factory(limits: Limits, clock: Clock) -> Limiter:
        made.append(limits)
        return RateLimiter(limits, clock)

    registry = LimiterRegistry(factory)
    registry.get("t", Limits.per(second=1), clock)
    registry.get("t", Limits.per(second=1), clock)
    assert made == [Limits.per(second=1)]


@pytest.fixture
def tenant() -> str:
    return f"test-{uuid.uuid4()}"


def test_get_limiter_uses_the_process_registry(clock: FakeClock, tenant: str) -> None:
    limiter = get_limiter(("vendorx", tenant), Limits.per(minute=1), clock)
    assert REGISTRY.get(("vendorx", tenant), Limits.per(minute=1)) is limiter

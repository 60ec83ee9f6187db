"""The open-loop load generator and the throughput search built on it (benchmarks/)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from benchmarks.bench_throughput import BARE, search_highest_rate
from benchmarks.openloop import LoadResult, TrivialServer, http_request, run_load


class _StallingServer(TrivialServer):
    """Blocks its whole event loop for `stall_s` while answering request number `stall_at`."""

    answered = 0
    stall_at = 200
    stall_s = 0.5

    def data_received(self, data: bytes) -> None:
        type(self).answered += 1
        if type(self).answered == self.stall_at:
            time.sleep(self.stall_s)  # what a stalled server looks like from outside
        super().data_received(data)


@pytest.fixture
def stalling_server() -> Iterator[str]:
    _StallingServer.answered = 0
    loop = asyncio.new_event_loop()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = loop.run_until_complete(loop.create_server(_StallingServer, sock=listener))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)


def _request(url: str) -> bytes:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    return http_request("POST", "127.0.0.1", port, "/", [("Accept", "*/*")], b"prompt=a fox")


def test_a_stall_shows_as_latency_for_every_request_scheduled_during_it(
    stalling_server: str,
) -> None:
    result = run_load(
        stalling_server, [_request(stalling_server)], rate=200, duration_s=2.0, warmup_s=0.0
    )

    assert result.errors == 0
    assert result.scheduled == len(result.latencies_s) == 400
    # About 100 requests were due during the 0.5 s stall; a closed loop would time only the 32
    # that were in flight. Timed from their intended start, a fifth of them wait over 100 ms.
    assert result.latency(1.0) >= 0.45
    assert result.latency(0.9) > 0.1
    assert result.connections_opened > 32


def test_it_counts_requests_it_could_not_send_on_time(stalling_server: str) -> None:
    result = run_load(
        stalling_server,
        [_request(stalling_server)],
        rate=200,
        duration_s=2.0,
        warmup_s=0.0,
        connections=2,
        max_connections=4,
    )

    assert result.unsent > 0
    assert result.unsent + len(result.latencies_s) == result.scheduled == 400


def _step(rate: float, *, holds: bool) -> LoadResult:
    return LoadResult(rate=rate, duration_s=8.0, latencies_s=[0.01 if holds else 0.5])


def test_the_search_steps_up_then_bisects_to_the_highest_rate_that_holds() -> None:
    measured: list[float] = []

    def measure(rate: float) -> LoadResult:
        measured.append(rate)
        return _step(rate, holds=rate <= 100)

    search = search_highest_rate(BARE, measure)

    assert measured == [25, 38, 57, 86, 129, 129, 105, 105, 95, 100]
    assert search.best is not None and search.best.rate == 100


def test_the_search_steps_down_when_the_first_rate_misses() -> None:
    measured: list[float] = []

    def measure(rate: float) -> LoadResult:
        measured.append(rate)
        return _step(rate, holds=rate <= 12)

    search = search_highest_rate(BARE, measure)

    assert measured == [25, 25, 17, 17, 11, 14, 14, 12, 13, 13]
    assert search.best is not None and search.best.rate == 12


def test_a_rate_that_misses_once_then_holds_counts_as_holding() -> None:
    attempts: dict[float, int] = {}

    def measure(rate: float) -> LoadResult:
        attempts[rate] = attempts.get(rate, 0) + 1
        hiccup = rate == 38 and attempts[rate] == 1
        return _step(rate, holds=rate <= 57 and not hiccup)

    search = search_highest_rate(BARE, measure, refinements=0)

    assert attempts == {25: 1, 38: 2, 57: 1, 86: 2}
    assert search.best is not None and search.best.rate == 57

"""An open-loop HTTP/1.1 load generator: requests start on schedule, whatever the server does.

A closed-loop tool (wrk, ab, a pool of clients) sends a connection's next request only after its
last answer, so a server that stalls also stalls the load, and the requests that should have
started during the stall are never timed (coordinated omission). Here, as with wrk2's `-R`, every
request has an intended start time on a fixed schedule (constant rate, or Poisson arrivals at the
same mean rate), and its latency runs from that intended time, so time spent waiting behind a
stalled server, or behind this process, counts. A request that finds every open connection busy
opens a new one; at `max_connections` it is not sent at all and is counted as `unsent`, an error.

Raw asyncio streams (uvloop when installed) and a minimal response parser, no HTTP client: the
generator's own cost must stay far below the server's. `self-test` measures that cost against a
trivial local server, and every result reports `lag`, how late the generator dispatched requests.

    python -m benchmarks.openloop run http://127.0.0.1:8000/healthz --rate 200 --duration 10
    python -m benchmarks.openloop self-test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import random
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

SELF_TEST_P99_LIMIT_S = 0.005
SELF_TEST_RATES = (250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000)


def http_request(
    method: str, host: str, port: int, path: str, headers: Sequence[tuple[str, str]], body: bytes
) -> bytes:
    """One HTTP/1.1 request as bytes; Host and Content-Length are set here, not by the caller."""
    skip = {"host", "content-length"}
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers if name.lower() not in skip]
    if body or method not in ("GET", "HEAD"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of sorted values (p99 of 1,000 values is the 990th)."""
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass
class LoadResult:
    """What one run at one offered rate measured; only requests scheduled after the warm-up."""

    rate: float
    duration_s: float  # measured part of the schedule; shorter if stopped early
    scheduled: int = 0
    latencies_s: list[float] = field(default_factory=list)  # every answered request, sorted
    lags_s: list[float] = field(default_factory=list)  # dispatch time - intended time, sorted
    non_2xx: int = 0
    socket_errors: int = 0
    unsent: int = 0  # every connection busy and max_connections open
    timeouts: int = 0  # still unanswered when the drain time ran out
    connections_opened: int = 0
    stopped_early: bool = False  # see run_load's stop_above_p99_s

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors + self.unsent + self.timeouts

    @property
    def achieved_rate(self) -> float:
        return len(self.latencies_s) / self.duration_s

    def latency(self, fraction: float) -> float:
        return percentile(self.latencies_s, fraction)

    def lag(self, fraction: float) -> float:
        return percentile(self.lags_s, fraction)

    def describe(self) -> str:
        def ms(value: float) -> str:
            return f"{value * 1000:.1f}"

        return (
            f"offered {self.rate:.0f}/s achieved {self.achieved_rate:.0f}/s | latency ms "
            f"p50 {ms(self.latency(0.5))} p90 {ms(self.latency(0.9))} "
            f"p99 {ms(self.latency(0.99))} max {ms(self.latency(1.0))} | errors "
            f"{self.errors} (non-2xx {self.non_2xx}, socket {self.socket_errors}, "
            f"unsent {self.unsent}, timeout {self.timeouts}) | lag p99 {ms(self.lag(0.99))} ms "
            f"| connections {self.connections_opened}"
            + (" | stopped early: p99 over the limit for certain" if self.stopped_early else "")
        )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return its status and whether the connection can be reused."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lowered = head.lower()
    keep_alive = b"\r\nconnection: close" not in lowered and head.startswith(b"HTTP/1.1")
    if status in (204, 304) or status < 200:
        return status, keep_alive
    length_at = lowered.find(b"\r\ncontent-length:")
    if length_at >= 0:
        end = lowered.index(b"\r\n", length_at + 2)
        length = int(lowered[length_at + len(b"\r\ncontent-length:") : end])
        if length:
            await reader.readexactly(length)
    elif b"\r\ntransfer-encoding: chunked" in lowered:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF; no trailers expected
            if size == 0:
                break
    else:
        await reader.read()  # delimited by the server closing the connection
        keep_alive = False
    return status, keep_alive


class _Connection:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def is_usable(self) -> bool:
        # The server may have closed it while idle (keep-alive timeout); a request sent on it
        # would fail through no fault of the server's capacity.
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class _OpenLoop:
    def __init__(
        self,
        host: str,
        port: int,
        requests: Sequence[bytes],
        *,
        connections: int,
        max_connections: int,
        stop_above_p99_s: float | None,
    ) -> None:
        self.host = host
        self.port = port
        self.requests = requests
        self.initial_connections = min(connections, max_connections)
        self.max_connections = max_connections
        self.idle: deque[_Connection] = deque()
        self.open_count = 0
        self.in_flight: set[asyncio.Task[None]] = set()
        self.stop_above_p99_s = stop_above_p99_s
        self.slow = 0  # measured requests answered later than stop_above_p99_s

    async def _connect(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 20)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(reader, writer)

    def _take_idle(self) -> _Connection | None:
        # Oldest first: requests go round the open connections, and so across every server
        # process that accepted one of them, instead of piling onto the most recent.
        while self.idle:
            connection = self.idle.popleft()
            if connection.is_usable():
                return connection
            connection.close()
            self.open_count -= 1
        return None

    async def _exchange(
        self,
        connection: _Connection | None,
        payload: bytes,
        intended: float,
        result: LoadResult | None,
    ) -> None:
        try:
            if connection is None:
                connection = await self._connect()
                if result is not None:
                    result.connections_opened += 1
            connection.writer.write(payload)
            status, keep_alive = await _read_response(connection.reader)
        except (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            if connection is not None:
                connection.close()
            self.open_count -= 1
            if result is not None:
                result.socket_errors += 1
            return
        except asyncio.CancelledError:  # still unanswered when the drain time ran out
            if connection is not None:
                connection.close()
            self.open_count -= 1
            if result is not None:
                result.timeouts += 1
            raise
        finished = time.perf_counter()
        if keep_alive:
            self.idle.append(connection)
        else:
            connection.close()
            self.open_count -= 1
        if result is not None:
            result.latencies_s.append(finished - intended)
            if self.stop_above_p99_s is not None and finished - intended > self.stop_above_p99_s:
                self.slow += 1
            if not 200 <= status < 300:
                result.non_2xx += 1

    def _dispatch(self, index: int, intended: float, result: LoadResult | None) -> None:
        connection = self._take_idle()
        if connection is None:
            if self.open_count >= self.max_connections:
                if result is not None:
                    result.unsent += 1
                return
            self.open_count += 1  # reserved now, opened by the request's own task
        if result is not None:
            result.lags_s.append(time.perf_counter() - intended)
        payload = self.requests[index % len(self.requests)]
        task = asyncio.get_running_loop().create_task(
            self._exchange(connection, payload, intended, result)
        )
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def run(
        self,
        rate: float,
        duration_s: float,
        warmup_s: float,
        *,
        poisson: bool,
        seed: int,
        drain_s: float,
    ) -> LoadResult:
        result = LoadResult(rate=rate, duration_s=duration_s)
        opened = await asyncio.gather(
            *(self._connect() for _ in range(self.initial_connections)), return_exceptions=True
        )
        for connection in opened:
            if isinstance(connection, _Connection):
                self.idle.append(connection)
                self.open_count += 1
        result.connections_opened = self.open_count
        randomness = random.Random(seed)
        interval = 1.0 / rate
        start = time.perf_counter() + 0.01
        measured_from = start + warmup_s
        # A constant rate schedules exactly rate x (warm-up + duration) requests: each intended
        # time is computed from its index (no float drift from repeated addition), and the end
        # sits half an interval early so a time that lands on it by rounding is not one extra.
        end = measured_from + duration_s - (0 if poisson else interval / 2)
        intended = start
        index = 0
        # p99 (nearest rank) of the n planned requests exceeds the limit once more than n / 100
        # of them have, whatever the rest do: the step has missed, and going on would only pile
        # up a backlog that the next step inherits.
        slow_budget = math.floor(rate * duration_s / 100)
        while intended < end:
            if self.stop_above_p99_s is not None and (result.errors or self.slow > slow_budget):
                result.stopped_early = True
                result.duration_s = max(intended - measured_from, interval)
                break
            now = time.perf_counter()
            if now < intended:
                # Event-loop timers have millisecond resolution, and a shorter sleep rounds to
                # zero and spins a core the server needs; so sleep at least 1 ms and dispatch
                # whatever is overdue on waking, each request timed from its own intended start.
                await asyncio.sleep(max(intended - now, 0.001))
                continue
            measured = intended >= measured_from - (0 if poisson else interval / 2)
            if measured:
                result.scheduled += 1
            self._dispatch(index, intended, result if measured else None)
            index += 1
            intended = (
                intended + randomness.expovariate(rate) if poisson else start + index * interval
            )
        if self.in_flight:
            _done, pending = await asyncio.wait(set(self.in_flight), timeout=drain_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        while self.idle:
            self.idle.popleft().close()
        self.open_count = 0
        result.latencies_s.sort()
        result.lags_s.sort()
        return result


def _run_coroutine(coroutine: Coroutine[Any, Any, LoadResult]) -> LoadResult:
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop
    # A full collection over a large heap (a benchmark that has Django loaded) pauses for tens
    # of milliseconds, which would show up as latency: freeze what exists, collect nothing new
    # during the bounded run, and catch up afterwards.
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(coroutine)
    finally:
        gc.enable()
        gc.unfreeze()


def run_load(
    url: str,
    requests: Sequence[bytes],
    *,
    rate: float,
    duration_s: float,
    warmup_s: float = 2.0,
    connections: int = 32,
    max_connections: int = 512,
    poisson: bool = False,
    seed: int = 1,
    drain_s: float = 5.0,
    stop_above_p99_s: float | None = None,
) -> LoadResult:
    """Send `requests` (raw HTTP/1.1 bytes, taken in turn) to `url`'s host at `rate` per second.

    `connections` keep-alive connections are opened first; more are opened as needed, up to
    `max_connections`. Requests scheduled in the first `warmup_s` are sent but not counted.
    Requests still unanswered `drain_s` after the schedule ends are counted as timeouts. With
    `stop_above_p99_s`, the run stops as soon as its p99 is certain to exceed that, or at the
    first error (for a search that only asks whether a rate holds).
    """
    if rate <= 0 or duration_s <= 0 or not requests:
        raise ValueError("rate and duration must be positive, and requests non-empty")
    parts = urlsplit(url)
    if parts.hostname is None or parts.scheme != "http":
        raise ValueError(f"need an http:// URL with a host, got {url!r}")
    generator = _OpenLoop(
        parts.hostname,
        parts.port or 80,
        requests,
        connections=connections,
        max_connections=max_connections,
        stop_above_p99_s=stop_above_p99_s,
    )
    return _run_coroutine(
        generator.run(rate, duration_s, warmup_s, poisson=poisson, seed=seed, drain_s=drain_s)
    )


# --- self-test: the generator against a server that does no work ---------------------------------

TRIVIAL_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
    b'{"ok":true}'
)


class TrivialServer(asyncio.Protocol):
    """Answers every request at once with a fixed 200, reading its Content-Length body."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: Any = None  # uvloop's transports do not subclass asyncio.Transport

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            length_at = head.find(b"\r\ncontent-length:")
            if length_at >= 0:
                line_end = head.find(b"\r\n", length_at + 2)
                line_end = len(head) if line_end < 0 else line_end
                length = int(head[length_at + len(b"\r\ncontent-length:") : line_end])
            request_end = head_end + 4 + length
            if len(self.buffer) < request_end:
                return
            self.buffer = self.buffer[request_end:]
            self.transport.write(TRIVIAL_RESPONSE)


def serve_trivial(port: int) -> None:
    """Serve TRIVIAL_RESPONSE on 127.0.0.1:`port` until killed."""

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(
            TrivialServer, "127.0.0.1", port, backlog=2048
        )
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def self_test_request(port: int) -> bytes:
    """A request the size of an SDK `videos.create` (about 1 KB), so parsing costs the same."""
    body = b"x" * 404
    headers = [(f"x-bench-header-{number}", "v" * 24) for number in range(14)]
    headers.append(("Content-Type", "multipart/form-data; boundary=bench"))
    return http_request("POST", "127.0.0.1", port, "/", headers, body)


def self_test(
    rates: Sequence[int] = SELF_TEST_RATES,
    duration_s: float = 5.0,
    report: Callable[[str], None] = print,
) -> tuple[int, list[LoadResult]]:
    """The highest rate (of `rates`) at which the generator keeps p99 < 5 ms with no errors
    against a server in another process that does no work; the generator's own ceiling."""
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - our own module
        [sys.executable, "-m", "benchmarks.openloop", "serve-trivial", str(port)]
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/"
        requests = [self_test_request(port)]
        best = 0
        results: list[LoadResult] = []

        def holds(rate: int) -> bool:
            # Twice before giving up, as the throughput search does: one hiccup of a busy
            # machine is not the generator's ceiling.
            for _attempt in range(2):
                result = run_load(url, requests, rate=rate, duration_s=duration_s, warmup_s=1.0)
                results.append(result)
                report(f"self-test {result.describe()}")
                if not result.errors and result.latency(0.99) < SELF_TEST_P99_LIMIT_S:
                    return True
            return False

        for rate in rates:
            if not holds(rate):
                break
            best = rate
        return best, results
    finally:
        server.terminate()
        server.wait(timeout=10)


def describe_ceiling(best: int, rates: Sequence[int] = SELF_TEST_RATES) -> str:
    if best == 0:
        return f"below {rates[0]} req/s"
    if best == rates[-1]:
        return f"at least {best} req/s (the highest rate tried)"
    return f"{best} req/s"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.openloop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="load one URL at a fixed rate")
    run.add_argument("url")
    run.add_argument("--rate", type=float, required=True, help="requests per second")
    run.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    run.add_argument("--warmup", type=float, default=2.0, help="seconds sent but not measured")
    run.add_argument("--method", default="GET")
    run.add_argument("-H", "--header", action="append", default=[], help="'Name: value'")
    run.add_argument("--data", default="", help="request body")
    run.add_argument("--connections", type=int, default=32, help="opened before the start")
    run.add_argument("--max-connections", type=int, default=512)
    run.add_argument("--poisson", action="store_true", help="Poisson arrivals at the same rate")
    test = commands.add_parser("self-test", help="the generator's ceiling: p99 < 5 ms, no work")
    test.add_argument("--duration", type=float, default=5.0)
    serve = commands.add_parser("serve-trivial", help="(internal) the self-test's server")
    serve.add_argument("port", type=int)
    arguments = parser.parse_args(argv)

    if arguments.command == "serve-trivial":
        serve_trivial(arguments.port)
    elif arguments.command == "self-test":
        best, _results = self_test(duration_s=arguments.duration)
        print(f"highest rate with p99 < 5 ms and no errors: {describe_ceiling(best)}")
    else:
        parts = urlsplit(arguments.url)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        headers = []
        for header in arguments.header:
            name, _, value = header.partition(":")
            headers.append((name.strip(), value.strip()))
        request = http_request(
            arguments.method.upper(), parts.hostname or "127.0.0.1", parts.port or 80, path,
            headers, arguments.data.encode(),
        )
        result = run_load(
            arguments.url, [request], rate=arguments.rate, duration_s=arguments.duration,
            warmup_s=arguments.warmup, connections=arguments.connections,
            max_connections=arguments.max_connections, poisson=arguments.poisson,
        )
        print(result.describe())


if __name__ == "__main__":
    main()

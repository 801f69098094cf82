"""Behind the endpoint proxy the harness's request_timeout is timed upstream, from when the proxy sends
the request (X-Launcher-Timeout), not from when the harness did: a request may wait in the proxy's queue
longer than its timeout and still succeed at its first attempt; an upstream slower than it is a 504."""

import asyncio

import pytest
from test_proxy import TOKEN, ProxyProcess, Recorder, chat, started  # noqa: F401 - the fixture

from launcher.harness.client import Client, RequestFailed, Settings


async def ask(base: str, n: int, proxied: bool, timeout: float = 1.0) -> list:
    """Each request's Reply, or its RequestFailed, sent at once (no retries: a timeout shows)."""
    settings = Settings(f"{base}/v1/chat/completions", "m", TOKEN, n, timeout, 0, "t", proxied)
    async with Client(settings) as client:
        return await asyncio.gather(*(client.post(chat(f"q{i}")) for i in range(n)), return_exceptions=True)


@pytest.mark.parametrize("proxied", [True, False])
def test_time_queued_in_the_proxy_is_not_spent_against_the_timeout(tmp_path, started, proxied):  # noqa: F811
    """6 requests, one upstream at a time, 0.5 s each: the last waits 2.5 s in the proxy's queue, past
    a 1 s timeout. Told it is behind the proxy (proxied), the harness lets the proxy time the attempt;
    without, the queue counts and the later requests time out (what happened before)."""
    rec = Recorder(delay=0.5)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"max_concurrent": 1})
    started.append(proxy)
    replies = asyncio.run(ask(proxy.base, 6, proxied))
    failed = [r for r in replies if isinstance(r, Exception)]
    if proxied:
        assert failed == [] and {r.attempts for r in replies} == {1}
    else:
        assert failed and all("request timed out" in str(r) for r in failed)


def test_an_upstream_slower_than_the_timeout_is_a_504_from_the_proxy(tmp_path, started):  # noqa: F811
    rec = Recorder(delay=3)  # past the 1 s timeout, far below the proxy's own (600 s)
    started.append(rec)
    proxy = ProxyProcess(tmp_path, rec.url, {"max_retries": 0})
    started.append(proxy)
    (reply,) = asyncio.run(ask(proxy.base, 1, proxied=True))
    assert isinstance(reply, RequestFailed) and "HTTP 504" in str(reply)
    assert proxy.stop() == 0
    assert proxy.stats()["errors"]["timeout"] == 1


def test_a_stuck_proxy_fails_the_attempt_at_the_backstop_instead_of_hanging(monkeypatch):
    """A proxy alive but stuck (accepts, never answers): behind it the harness times no attempt itself,
    so only the backstop (client.PROXIED_BACKSTOP, shortened here) ends the attempt, as a timeout."""
    from launcher.harness import client

    monkeypatch.setattr(client, "PROXIED_BACKSTOP", 1.5)

    async def main() -> list:
        held: list = []

        async def hold(reader, writer):  # read the request, answer nothing, keep the socket open
            held.append(writer)
            await reader.read(65536)
            await asyncio.sleep(60)

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await asyncio.wait_for(ask(f"http://127.0.0.1:{port}", 1, proxied=True, timeout=0.1), 30)
        finally:
            for w in held:
                w.close()
            server.close()

    (reply,) = asyncio.run(main())
    assert isinstance(reply, RequestFailed) and "request timed out" in str(reply)

"""The live service's HTTP layer without a server: BentoML's request timer is cancelled with the request."""

import asyncio

from bentoml._internal.server.http.traffic import TimeoutMiddleware

from lifecycle import serving


async def _app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_no_request_timer_outlives_its_request():
    assert TimeoutMiddleware.__call__ is serving._timeout_middleware  # importing the service installs it

    async def run() -> int:
        middleware = TimeoutMiddleware(_app, timeout=60)
        sent = []

        async def send(message):
            sent.append(message)

        for _ in range(50):
            await middleware({"type": "http"}, None, send)
        assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200] * 50
        loop = asyncio.get_running_loop()
        return sum(1 for h in loop._scheduled if not h.cancelled())  # timers still pending on the loop

    assert asyncio.run(run()) == 0

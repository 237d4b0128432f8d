"""Around every HTTP request: its id, its log context, its metrics.

The id is the client's `X-Request-Id` when that is a sane token (at most 128 characters of letters, digits
and `._:+/=@-`), so a proxy's or caller's id carries through; otherwise one is made (a random per-process
prefix and a counter: unique, and cheaper than a UUID). It is set in `logs.REQUEST_ID` while the request
runs and echoed as the response's `X-Request-Id`.

The route label: the dispatcher names the route template of a data-plane request it matched
(`name_route`, no second match); anything else is labelled by the service's own root it went to
(`/generator`, `/data-products/*`) or `(unmatched)`, so a scan of random paths cannot grow the series."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Awaitable, Callable, Iterable
from time import perf_counter

from starlette.types import Message, Receive, Scope, Send

from generator.operations.logs import REQUEST_ID
from generator.operations.metrics import METHODS, Metrics

STATE_KEY = "drg.operations"
HEADER = b"x-request-id"
SANE_ID = re.compile(rb"[A-Za-z0-9._:+/=@-]{1,128}")
UNMATCHED = "(unmatched)"
App = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestState:
    """What the dispatcher tells the observer about a request while serving it."""

    __slots__ = ("route", "status")

    def __init__(self) -> None:
        self.route: str | None = None
        self.status = 500  # until a response starts: an app that raised got uvicorn's 500


def name_route(scope: Scope, template: str) -> None:
    """Label this request's metrics with `template` (the dispatcher calls it once it matched a route)."""
    state = scope.get(STATE_KEY)
    if state is not None:
        state.route = template


class RequestIds:
    def __init__(self) -> None:
        self._prefix = os.urandom(6).hex().encode()
        self._counter = itertools.count(1)

    def of(self, scope: Scope) -> bytes:
        for key, value in scope["headers"]:
            if key == HEADER:
                if SANE_ID.fullmatch(value):
                    return value
                break
        return b"%s-%x" % (self._prefix, next(self._counter))


class RequestObserver:
    """Wraps the dispatcher's HTTP handling: `await observer(app, scope, receive, send)`."""

    def __init__(self, metrics: Metrics, roots: Iterable[str]) -> None:
        self.metrics = metrics
        self.ids = RequestIds()
        self.active = 0  # requests being answered; only the event loop changes it (metrics.py samples it)
        # One label per root of the service's own; deeper paths under it share `/<root>/*`.
        self._labels = {root: (f"/{root}", f"/{root}/*") for root in roots}

    async def __call__(self, app: App, scope: Scope, receive: Receive, send: Send) -> None:
        state = RequestState()
        scope[STATE_KEY] = state
        request_id = self.ids.of(scope)
        echoed = (HEADER, request_id)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                state.status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), echoed]}
            await send(message)

        token = REQUEST_ID.set(request_id.decode())
        self.active += 1
        started = perf_counter()
        try:
            await app(scope, receive, sending)
        finally:
            seconds = perf_counter() - started
            self.active -= 1
            REQUEST_ID.reset(token)
            method = scope["method"]
            self.metrics.observe(state.route or self.label(scope["path"]), method if method in METHODS else "OTHER",
                                 state.status, seconds)

    def label(self, path: str) -> str:
        """The bounded label of a request the data plane did not name."""
        parts = path.split("/", 2)
        labels = self._labels.get(parts[1]) if len(parts) > 1 else None
        if labels is None:
            return UNMATCHED
        return labels[1] if len(parts) > 2 and parts[2] else labels[0]

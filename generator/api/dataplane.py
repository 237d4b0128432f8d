"""Serving one request of the data plane: run the endpoint, render its problem if it raised one.

The data plane needs no framework beyond Starlette's request and response objects: routing is the route
table's, validation the query grammar's and the body schemas', so a request pays for nothing else (Connexion
remains for the admin app). Problems render as RFC 7807 problem+json; 4xx are logged at warning, anything
unexpected at error with its traceback, and the client gets a 500 problem that names no internals."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from generator.api.routes import Endpoint
from generator.codec import dumps
from generator.errors import Problem

log = logging.getLogger("generator.api")


def problem_response(problem: Problem) -> Response:
    body: dict[str, Any] = {"type": problem.type or "about:blank", "title": problem.title,
                            "status": problem.status, "detail": problem.detail, **(problem.ext or {})}
    return Response(dumps(body), status_code=problem.status, media_type="application/problem+json",
                    headers=problem.headers)


SERVER_ERROR = Problem(500, "Internal Server Error", "The service failed to answer this request; the error is "
                                                     "logged. Nothing was written unless a 2xx said so.")


async def serve(endpoint: Endpoint, params: Sequence[str], scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        response = await endpoint(request, params)
    except Problem as problem:
        if problem.status >= 500:
            log.error("%s %s: %s", scope["method"], scope["path"], problem.detail)
        response = problem_response(problem)
    except Exception:
        log.exception("%s %s failed", scope["method"], scope["path"])
        response = problem_response(SERVER_ERROR)
    await response(scope, receive, without_body(send) if scope["method"] == "HEAD" else send)


def without_body(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b"", "more_body": message.get("more_body", False)}
        await send(message)

    return sending

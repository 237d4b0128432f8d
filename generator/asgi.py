"""ASGI plumbing for the dispatcher: problems sent without a framework, and request limits enforced
before any framework reads the request, so one client cannot hold a worker.

Limits are checked on what the request declares (`Content-Length`, the query string) and answered at
once; a body without a declared length (chunked) is read up to the limit and then replayed."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from generator.codec import dumps

Headers = list[tuple[bytes, bytes]]


async def send_bytes(send: Send, status: int, body: bytes, media_type: bytes,
                     extra_headers: Headers | None = None) -> None:
    headers = [(b"content-type", media_type), (b"content-length", str(len(body)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def problem(status: int, title: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}


async def send_problem(send: Send, body: dict[str, Any], extra_headers: Headers | None = None) -> None:
    await send_bytes(send, body["status"], dumps(body), b"application/problem+json", extra_headers)


async def refuse_websocket(scope: Scope, receive: Receive, send: Send) -> None:
    """No route speaks WebSocket: answer the upgrade with a plain HTTP problem where the server allows it
    (the ASGI `websocket.http.response` extension), otherwise close before accepting (HTTP 403)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    body = dumps(problem(404, "Not Found", "This service has no WebSocket routes"))
    await send({"type": "websocket.http.response.start", "status": 404,
                "headers": [(b"content-type", b"application/problem+json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "websocket.http.response.body", "body": body})


def relative_redirects(scope: Scope, send: Send) -> Send:
    """Strip scheme and host from a `Location` the frameworks build from the request's `Host` header (a
    trailing-slash redirect would otherwise send clients to `Host: evil.example`)."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [(k, _path_only(v) if k == b"location" else v)
                                              for k, v in message.get("headers", [])]}
        await send(message)

    return sending


def _path_only(location: bytes) -> bytes:
    if not location.startswith((b"http://", b"https://")):
        return location
    rest = location.split(b"//", 1)[1]
    return b"/" + rest.split(b"/", 1)[1] if b"/" in rest else b"/"


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def declared_length(scope: Scope) -> int | None:
    """The body size the request declares, or None when it is chunked or absent."""
    value = header(scope, b"content-length")
    return int(value) if value is not None and value.isdigit() else None


def too_large(limit: int) -> dict[str, Any]:
    return problem(413, "Content Too Large", f"The request body is larger than this route accepts ({limit} bytes)",
                   limit=limit)


async def buffer_chunked(scope: Scope, receive: Receive, limit: int) -> tuple[Scope, Receive] | None:
    """Read a body sent without `Content-Length` up to `limit` bytes; None if it is larger. The body is
    replayed with a `Content-Length`, which Connexion's validators need to see a body at all."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return scope, _replay(b"", receive, message)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")]
    return {**scope, "headers": [*headers, (b"content-length", str(len(body)).encode())]}, _replay(body, receive)


def _replay(body: bytes, receive: Receive, first: Message | None = None) -> Receive:
    pending: list[Message] = [first] if first else [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        return pending.pop() if pending else await receive()

    return replayed

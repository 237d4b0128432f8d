"""Rendering, apart from execution: rows → JSON, CSV or PostgREST's shapes; links, ETags, negotiation.

Plans return rows; these functions turn them into bytes. JSON is written with orjson (`codec.dumps`),
Decimals as exact numbers. CSV follows RFC 4180 (header row, quoting by the `csv` module), JSON-like values
as JSON text, NULL as an empty field."""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from starlette.responses import Response

from generator.codec import dumps, dumps_text
from generator.errors import Problem

JSON = "application/json"
CSV = "text/csv"
PGRST_OBJECT = "application/vnd.pgrst.object+json"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(dumps(body), status_code=status, media_type=JSON, headers=headers)


def etag(row: Mapping[str, Any]) -> str:
    """A strong validator of a row's current content: any change to any field changes it."""
    return etag_of(dumps(row))


def etag_of(serialised: bytes) -> str:
    """The ETag of a row already serialised (the same bytes `etag` hashes)."""
    return '"' + hashlib.blake2b(serialised, digest_size=16).hexdigest() + '"'


def matches(if_match: str, current: str | None) -> bool:
    """RFC 9110 `If-Match`: `*` matches any current row; otherwise one of the listed tags (weak ones never)."""
    if if_match.strip() == "*":
        return current is not None
    tags = [tag.strip() for tag in if_match.split(",")]
    return current is not None and current in tags


def negotiate(accept: str | None, offered: Sequence[str]) -> str:
    """The best of `offered` for an `Accept` header, or a 406 problem naming what is offered."""
    if not accept:
        return offered[0]
    ranges = []
    for index, part in enumerate(accept.split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranges.append((quality, -index, media.lower()))
    for quality, _, media in sorted(ranges, reverse=True):
        if quality <= 0:
            continue
        for candidate in offered:
            if media in ("*/*", candidate) or (media.endswith("/*") and candidate.startswith(media[:-1])):
                return candidate
    raise Problem(406, "Not Acceptable", f"This route answers {', '.join(offered)}; the request accepts none of them",
                  extra={"offered": list(offered)})


def csv_chunks(names: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """CSV text, a few hundred rows per chunk, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(names)
    for count, row in enumerate(rows, 1):
        writer.writerow([_csv_value(row[name]) for name in names])
        if count % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return dumps_text(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def content_range(offset: int | None, shown: int, total: int | None) -> str:
    """`0-99/1234`; `*` for an unknown total (not counted) or an unknown start (a cursor page)."""
    whole = "*" if total is None else str(total)
    if shown == 0 or offset is None:
        return f"*/{whole}"
    return f"{offset}-{offset + shown - 1}/{whole}"

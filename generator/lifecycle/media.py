"""Media types, as the seed allows them: `application/vnd.odmp.v1+json` (preferred), `application/vnd.odmp+json`,
`application/json` and `application/octet-stream` (JSON in either case). There is no content negotiation
beyond that: a request whose `Content-Type` is another type is 415 (41501), one whose `Accept` admits none of
them is 406 (40601). Answers carry the first of them the caller accepts (the preferred one for `*/*`)."""

from __future__ import annotations

from generator.lifecycle.problems import OdmProblem

PREFERRED = "application/vnd.odmp.v1+json"
SUPPORTED = (PREFERRED, "application/vnd.odmp+json", "application/json", "application/octet-stream")
WILDCARDS = {"*/*": PREFERRED, "application/*": PREFERRED}


def _types(value: str) -> list[tuple[str, float]]:
    found = []
    for part in value.split(","):
        pieces = [p.strip() for p in part.split(";")]
        quality = 1.0
        for parameter in pieces[1:]:
            key, _, number = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if pieces[0]:
            found.append((pieces[0].lower(), quality))
    return found


def response_type(accept: str | None) -> str:
    """The media type of the answer; 406 (40601) when `Accept` admits none of ours."""
    if accept is None or not accept.strip():
        return PREFERRED
    ranked = sorted((t for t in _types(accept) if t[1] > 0), key=lambda t: -t[1])  # stable: ties keep order
    for media, _ in ranked:
        if media in SUPPORTED:
            return media
        if media in WILDCARDS:
            return WILDCARDS[media]
    raise OdmProblem(406, 40601, "Request accepted media types not supported",
                     f"Accept {accept!r} admits none of {', '.join(SUPPORTED)}")


def check_request_type(content_type: str | None) -> None:
    """415 (41501) for a body whose `Content-Type` is not ours; a missing one is taken as JSON."""
    if content_type is None or not content_type.strip():
        return
    media = content_type.split(";")[0].strip().lower()
    if media not in SUPPORTED:
        raise OdmProblem(415, 41501, "Request media type not supported",
                         f"Content-Type {media!r} is not one of {', '.join(SUPPORTED)}")

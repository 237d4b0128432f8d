"""URNs of the metadata graph, parsed and checked. Pure: no SQLAlchemy, no HTTP.

    urn:li:dataset:(urn:li:dataPlatform:<platform>,<name>,<ENV>)
    urn:li:dataProduct:<name>      urn:li:corpGroup:<team>      urn:li:corpuser:<user>
    urn:li:dataJob:(urn:li:dataFlow:(<orchestrator>,<flow>,<cluster>),<job>)

`parse_urn` raises `BadUrn` with a message saying what is wrong; callers turn it into a 400 naming where
the URN was (a JSON pointer)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

ENTITY_TYPES = ("dataset", "dataProduct", "corpGroup", "corpuser", "dataJob")
ENVIRONMENTS = frozenset({"PROD", "DEV", "TEST", "QA", "UAT", "EI", "PRE", "STG", "NON_PROD", "CORP", "SANDBOX"})
SIMPLE_ID = re.compile(r"[^\s(),]{1,200}")
PLATFORM = re.compile(r"urn:li:dataPlatform:([A-Za-z0-9_.-]{1,100})")
DATASET_NAME = re.compile(r"[^\s(),]{1,400}")
FLOW = re.compile(r"urn:li:dataFlow:\(([^\s(),]{1,100}),([^\s(),]{1,200}),([^\s(),]{1,100})\)")
MAX_LENGTH = 1000
CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # never in a URN (PostgreSQL cannot even store a NUL in text)


class BadUrn(ValueError):
    """A URN that is not one of the graph's entity forms; the message says why."""


@dataclass(frozen=True)
class Urn:
    text: str
    entity_type: str
    parts: tuple[str, ...]  # dataset: (platform, name, env); dataJob: (flow urn, job); others: (id,)

    def __str__(self) -> str:
        return self.text

    @property
    def platform(self) -> str | None:
        return self.parts[0] if self.entity_type == "dataset" else None

    @property
    def name(self) -> str:
        return self.parts[1] if self.entity_type in ("dataset", "dataJob") else self.parts[0]


def parse_urn(text: object) -> Urn:
    if not isinstance(text, str):
        raise BadUrn("a URN must be a string")
    if len(text) > MAX_LENGTH:
        raise BadUrn(f"a URN has at most {MAX_LENGTH} characters")
    if CONTROL.search(text):
        raise BadUrn("a URN has no control characters")
    return _parsed(text)


@lru_cache(maxsize=8192)
def _parsed(text: str) -> Urn:
    """A good URN's parse is kept (Urn is immutable): a batchGet of 100 entities parses the same URNs each time.
    A bad one raises, and exceptions are never cached."""
    if not text.startswith("urn:li:"):
        raise BadUrn(f"{text!r} is not a URN: it must start with 'urn:li:'")
    entity_type, _, rest = text[len("urn:li:"):].partition(":")
    if entity_type not in ENTITY_TYPES:
        raise BadUrn(f"{entity_type!r} is not an entity type of the graph (one of {', '.join(ENTITY_TYPES)})")
    if entity_type == "dataset":
        return Urn(text, entity_type, _dataset(rest))
    if entity_type == "dataJob":
        return Urn(text, entity_type, _data_job(rest))
    if not SIMPLE_ID.fullmatch(rest):
        raise BadUrn(f"{text!r}: a {entity_type} URN is urn:li:{entity_type}:<id>, an id without spaces, "
                     "commas or parentheses")
    return Urn(text, entity_type, (rest,))


def _dataset(rest: str) -> tuple[str, str, str]:
    form = "urn:li:dataset:(urn:li:dataPlatform:<platform>,<name>,<ENV>)"
    if not (rest.startswith("(") and rest.endswith(")")):
        raise BadUrn(f"a dataset URN is {form}")
    pieces = rest[1:-1].split(",")
    if len(pieces) != 3:
        raise BadUrn(f"a dataset URN is {form}: three parts in parentheses")
    platform, name, env = pieces
    matched = PLATFORM.fullmatch(platform)
    if matched is None:
        raise BadUrn(f"{platform!r} is not a data platform URN (urn:li:dataPlatform:<platform>)")
    if not DATASET_NAME.fullmatch(name):
        raise BadUrn(f"{name!r} is not a dataset name (no spaces, commas or parentheses)")
    if env not in ENVIRONMENTS:
        raise BadUrn(f"{env!r} is not an environment (one of {', '.join(sorted(ENVIRONMENTS))})")
    return matched.group(1), name, env


def _data_job(rest: str) -> tuple[str, str]:
    form = "urn:li:dataJob:(urn:li:dataFlow:(<orchestrator>,<flow>,<cluster>),<job>)"
    if not (rest.startswith("(") and rest.endswith(")")):
        raise BadUrn(f"a dataJob URN is {form}")
    flow, _, job = rest[1:-1].rpartition(",")
    if not FLOW.fullmatch(flow) or not SIMPLE_ID.fullmatch(job):
        raise BadUrn(f"a dataJob URN is {form}")
    return flow, job


def dataset_urn(platform: str, name: str, env: str) -> str:
    return f"urn:li:dataset:(urn:li:dataPlatform:{platform},{name},{env})"


def team_urn(team: str) -> str:
    return f"urn:li:corpGroup:{team}"


def product_urn(name: str) -> str:
    return f"urn:li:dataProduct:{name}"


def user_urn(subject: str) -> str:
    return f"urn:li:corpuser:{subject}"


def field_urn(dataset: str, field: str) -> str:
    return f"urn:li:schemaField:({dataset},{field})"

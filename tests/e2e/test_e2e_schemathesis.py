"""Schemathesis with every check (``st run --checks all``) against the API generated from default.json and
all_types.json, on a real server, SQLite and PostgreSQL.

Each test starts one ``uvicorn wsgi:app`` process, POSTs one corpus payload to ``/generator``, loads the
document the server serves at ``/openapi.json`` and runs schemathesis' own engine on it, as the CLI does:
every phase (examples, coverage, fuzzing, stateful), positive and negative data, every check. The run is
bounded (``MAX_EXAMPLES`` per operation) and deterministic (fixed seed, derandomized Hypothesis, no example
database), so a failure reproduces on the next run. Every distinct failure is listed in the assertion message
with the server's answer and a curl command (a failure that depends on earlier requests, such as a row created
before, lists those requests when schemathesis recorded them).

Generation settings that follow documented behaviour rather than loosen a check:

* ``allow-x00 = false``: the README documents that strings containing NUL are refused with a 400 on both
  databases (PostgreSQL cannot store them), so NUL is not a valid character of any string the API takes.
  The served document does not repeat that rule as a pattern on every string; telling the generator states
  the same contract without changing what any check verifies.

* Many-to-many link sets (``PUT``/``PATCH /<parent>/{id}/<child>``): ``positive_data_acceptance`` also
  expects 400. A body of well-typed keys is schema-valid, but keys naming no row are refused with a 400 that
  names each (the relationships issue specifies 400); whether a row exists is not something a schema can
  state. Every other status stays unexpected, and every other check applies unchanged.

All checks stay enabled; none is excluded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import events, from_schema
from schemathesis.engine.statistic import Statistic

from tests.e2e.helpers import client
from tests.support.live_server import StartLiveServer

Payload = Callable[[str], dict[str, Any]]

PAYLOADS = ["default.json", "all_types.json"]
MAX_EXAMPLES = 50  # per operation and phase; the four runs together take about two minutes
SEED = 20260101


def schemathesis_config() -> schemathesis.Config:
    """``st run --checks all --mode all --phases examples,coverage,fuzzing,stateful`` as a config."""
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # No crash cache in .schemathesis/: a run must not replay what an earlier run found.
            "cache": {"enabled": False},
            "phases": {"enabled": True},
            "generation": {
                "mode": "all",  # positive and negative data
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,  # Hypothesis' derandomize: the same cases every run
                "database": "none",  # no .hypothesis example database: nothing carries over between runs
                "allow-x00": False,  # NUL in strings is a documented 400 (see the module docstring)
            },
            "request-timeout": 30,
            # Keep testing an operation after its first failure, so one run lists every distinct failure.
            "continue-on-failure": True,
            # Reproductions show the real values (sanitization would print "[Filtered]" for keys like "key").
            "output": {"sanitization": {"enabled": False}},
            "operations": [{
                "include-path-regex": r"^/[^/]+/\{id\}/[^/]+$",
                "include-method": ["PUT", "PATCH"],
                "checks": {"positive_data_acceptance": {"expected-statuses": [
                    "2xx", "3xx", "400", "401", "403", "404", "409", "429", "5xx"]}},
            }],
        }
    )
    # Exactly what `--checks all` does on the command line.
    config.projects.override.checks.update(included_check_names=["all"])
    return config


def run_schemathesis(base_url: str) -> tuple[Statistic, list[str]]:
    """Run every phase and check against ``base_url``; the failures (deduplicated as the CLI does them) and
    any engine errors."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=schemathesis_config())
    statistic = Statistic()
    errors: list[str] = []
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.is_test_scenario:
            statistic.on_scenario_finished(event.recorder)
        elif isinstance(event, events.NonFatalError):
            errors.append(f"{event.label}: {event.info.format()}")
        elif isinstance(event, events.FatalError):
            errors.append(f"fatal: {event.exception!r}")
    return statistic, errors


def describe_failures(statistic: Statistic) -> str:
    """One block per distinct failure: check, operation, message, the server's answer, a curl command."""
    blocks: list[str] = []
    for label, groups in sorted(statistic.failures.items()):
        for group in groups.values():
            response = group.response
            answer = ""
            if response is not None:
                body = response.content.decode("utf-8", errors="replace") if response.content else ""
                answer = f"{response.status_code} {body[:600]}"
            # A failure that needs earlier requests (e.g. a row created first) lists every step.
            steps = [step.curl for step in group.steps] or [group.code_sample]
            repro = "\n            ".join(str(step) for step in steps)
            for failure in group.failures:
                blocks.append(
                    f"- [{failure.code}] {failure.title} — {label}\n"
                    f"    {(failure.message or '').strip()}\n"
                    f"    server: {answer}\n"
                    f"    repro:  {repro}"
                )
    return "\n".join(blocks)


@pytest.mark.parametrize("payload_name", PAYLOADS)
def test_schemathesis_all_checks_find_nothing(
    database_url: str, payload_name: str, live_server: StartLiveServer, load_payload: Payload, tmp_path: Path
) -> None:
    server = live_server(database_url, tmp_path)
    with client(server) as http:
        generated = http.post("/generator", json=load_payload(payload_name))
        assert generated.status_code == 201, f"{generated.text}\n--- server log ---\n{server.log_text()[-4000:]}"

    statistic, errors = run_schemathesis(server.url)

    assert not errors, "schemathesis could not run:\n" + "\n".join(errors)
    assert statistic.tested_operations, "schemathesis tested no operation"
    failures = describe_failures(statistic)
    assert not statistic.failures, (
        f"schemathesis found {statistic.total_failures} failure(s) against {payload_name} on "
        f"{database_url.split(':')[0]}:\n{failures}"
    )


def test_config_enables_every_check() -> None:
    """The run above is `--checks all`: no built-in check is switched off."""
    from schemathesis.checks import CHECKS, load_all_checks

    load_all_checks()
    project = schemathesis_config().projects.get_default()
    disabled = [name for name in CHECKS.get_all_names()
                if name != "max_response_time" and not project.checks.get_by_name(name=name).enabled]
    assert disabled == [], json.dumps(disabled)

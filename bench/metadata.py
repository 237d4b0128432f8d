"""The cost of the metadata graph: `.venv/bin/python bench/metadata.py` (`--quick` for a short run).

One service (`uvicorn wsgi:app`, 2 workers) on a throwaway PostgreSQL; one generation of a small table `t`
(5 columns, 100 rows), and 100 dataset entities with 3 aspects each (`datasetProperties`, `globalTags`,
`ownership`). Measured, each against a plain generated-table request of the same run as the ratio:

* reads: `POST /openapi/v3/entity/dataset/batchGet` of the 100 entities x 3 aspects, against
  `GET /t?limit=100` (a page of 100 rows);
* writes: `POST /openapi/entities/v1/` of one aspect (`datasetProperties`), each request to the next of the
  100 entities (a new version every time), against a plain row `POST /t`.

Reuses bench/run.py's servers, wrk runs (alternated rounds, medians, the idle-machine wait, the
connections-per-worker check) and summary table; its wrk runs use this file's Lua script for the POSTs.
See bench/README.md, "Metadata graph".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as bench  # noqa: E402  (bench/run.py; it puts the repository on sys.path)

from tests.support.postgres import start_postgres  # noqa: E402

ENTITIES = 100
ASPECTS = ("datasetProperties", "globalTags", "ownership")
ROWS = 100
PLATFORM = "urn:li:dataPlatform:bench"  # not this service's platform: no data product governs them

# wrk script: the method, and the bodies (one JSON document a line) of BENCH_BODIES, sent in turn (each wrk
# thread starts at its own offset); no bodies: a plain GET.
LUA = """
local method = os.getenv("BENCH_METHOD") or "GET"
local bodies = {}
local file = os.getenv("BENCH_BODIES")
if file then
    for line in io.lines(file) do
        if #line > 0 then bodies[#bodies + 1] = line end
    end
end
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_number", threads)
end
local next_body = 0
function init(args)
    next_body = (thread_number or 0) * 7
end
function request()
    if #bodies == 0 then
        return wrk.format(method)
    end
    next_body = next_body % #bodies + 1
    return wrk.format(method, nil, {["Content-Type"] = "application/json"}, bodies[next_body])
end
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Metadata-graph reads and writes against plain table ones.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 s warm-up, 3 rounds, idle wait 5 s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--balance-attempts", type=int, default=8)
    parser.add_argument("--idle-wait", type=float, default=None,
                        help="seconds to wait for a quiet machine before each run [20; --quick 5]")
    bench.add_run_length_options(parser)
    parser.add_argument("--output", type=Path, default=bench.RESULTS_DIR / "metadata.json")
    args = parser.parse_args(argv)
    bench.settle_run_length(args)
    if args.idle_wait is None:  # --quick stays under about 3 minutes on a busy machine
        args.idle_wait = 5.0 if args.quick else 20.0
    return args


def payload() -> dict[str, Any]:
    fields = [{"name": "id", "type": "integer"}, {"name": "name", "type": "string"},
              {"name": "note", "type": "string"}, {"name": "amount", "type": "integer"},
              {"name": "born", "type": "date"}]
    return {"data_resource_schema": {
        "data": {"dataDictionary": [{"name": "t", "tableSchema": {"fields": fields, "primaryKey": "id"}}]},
        "api": {"apiSpec": {"paths": {"/t": {"get": {}, "post": {}}}}}}, "ignore_validation": True}


def row(i: int) -> dict[str, Any]:
    return {"name": f"name{i}", "note": f"note {i} " + "x" * (i % 40), "amount": i, "born": f"19{50 + i % 50}-01-02"}


def urn(i: int) -> str:
    return f"urn:li:dataset:({PLATFORM},db.schema.table{i},PROD)"


def aspect(name: str, i: int, version: int = 0) -> dict[str, Any]:
    """An aspect value of a realistic size (a few hundred bytes)."""
    if name == "datasetProperties":
        return {"__type": "DatasetProperties", "name": f"table{i}", "description": f"Table {i}, version {version}",
                "customProperties": {"team": "bench", "tier": str(i % 3), "rows": str(1000 * i)}}
    if name == "globalTags":
        return {"__type": "GlobalTags", "tags": [{"tag": f"urn:li:tag:{t}"} for t in ("pii", "gold", f"t{i % 5}")]}
    return {"__type": "Ownership", "owners": [{"owner": f"urn:li:corpuser:user{i % 7}", "type": "DATAOWNER"},
                                              {"owner": "urn:li:corpGroup:BENCH", "type": "TECHNICAL_OWNER"}]}


def write_item(name: str, i: int, version: int = 0) -> dict[str, Any]:
    return {"entityType": "dataset", "entityUrn": urn(i), "aspect": aspect(name, i, version)}


def batch_body() -> list[dict[str, Any]]:
    return [{"urn": urn(i), **{name: {} for name in ASPECTS}} for i in range(ENTITIES)]


def set_up(service: bench.Server, tmp: Path) -> dict[str, Path]:
    """The generation, the rows and entities, the checks; the request bodies the wrk script sends."""
    with bench.client(service) as http:
        bench.expect(http.post("/generator", json=payload()), 201, "POST /generator")
        bench.expect(http.post("/t", json=[row(i) for i in range(ROWS)]), 201, "POST /t (the rows)")
        items = [write_item(name, i) for i in range(ENTITIES) for name in ASPECTS]
        bench.expect(http.post("/openapi/entities/v1/", json=items), 200, "POST /openapi/entities/v1/")
        page = http.get("/t", params={"limit": ROWS})
        bench.expect(page, 200, "GET /t?limit=100")
        got = http.post("/openapi/v3/entity/dataset/batchGet", json=batch_body())
        bench.expect(got, 200, "batchGet")
    if len(page.json()["t"]) != ROWS:
        raise RuntimeError(f"GET /t?limit=100 answered {len(page.json()['t'])} rows")
    entities = got.json()
    if len(entities) != ENTITIES or any(set(e) != {"urn", *ASPECTS} for e in entities):
        raise RuntimeError(f"batchGet did not answer {ENTITIES} entities with {ASPECTS}: {str(entities)[:500]}")
    bench.say(f"  GET /t?limit=100: {len(page.content):,} bytes; batchGet: {len(got.content):,} bytes")
    bodies = {"batch": [batch_body()], "aspect": [[write_item("datasetProperties", i, 1)] for i in range(ENTITIES)],
              "row": [row(i) for i in range(ENTITIES)]}
    files = {}
    for name, documents in bodies.items():
        files[name] = tmp / f"{name}.jsonl"
        files[name].write_text("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in documents))
    return files


def endpoints(files: dict[str, Path]) -> list[tuple[str, tuple[str, bench.Endpoint], tuple[str, bench.Endpoint]]]:
    def post(key: str, label: str, path: str, body: str) -> bench.Endpoint:
        return bench.Endpoint(key, label, path, (("BENCH_METHOD", "POST"), ("BENCH_BODIES", str(files[body]))))

    batch = post("batch_get", f"POST batchGet ({ENTITIES} x {len(ASPECTS)})", "/openapi/v3/entity/dataset/batchGet",
                 "batch")
    page = bench.Endpoint("page", f"GET /t?limit={ROWS}", f"/t?limit={ROWS}")
    write = post("aspect_write", "POST /openapi/entities/v1/ (1 aspect)", "/openapi/entities/v1/", "aspect")
    insert = post("row_write", "POST /t (1 row)", "/t", "row")
    return [(f"batchGet {ENTITIES} entities x {len(ASPECTS)} aspects / GET /t?limit={ROWS}", ("metadata", batch),
             ("plain", page)),
            ("aspect write / row write", ("metadata", write), ("plain", insert))]


def summary(loads: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"metric": f"{label} (req/s)", "service": f"{result['metadata_rps']:,.0f}",
             "baseline": f"{result['plain_rps']:,.0f}", "ratio": f"{result['ratio']:.3f}", "target": "",
             "result": "info"} for label, result in loads.items()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if bench.wrk_missing():
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="drg-bench-metadata-"))
    lua = tmp / "metadata.lua"
    lua.write_text(LUA)
    bench.PK_SCRIPT = lua  # run_wrk's script: every scripted load here is this one (no random keys)
    bench.say("Starting a throwaway PostgreSQL server ...")
    postgres = start_postgres()
    results: dict[str, Any] = {"options": {k: str(v) for k, v in vars(args).items()}}
    try:
        url = postgres.create_database("bench_metadata")
        service = bench.service_server("service", url, tmp, args.workers)
        with bench.running(service):
            files = set_up(service, tmp)
            results["loads"] = {}
            for label, (first, a), (second, b) in endpoints(files):
                bench.say(f"== {label}")
                results["loads"][label] = bench.compare_pair((first, service, a), (second, service, b), args)
        results["load_average"] = os.getloadavg()
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summary(results["loads"])
    results["summary"] = rows
    bench.say("\n(service = the metadata graph's request, baseline = the plain table's)")
    bench.print_summary(rows)
    bench.say(f"load average at the end: {' '.join(f'{v:.1f}' for v in results['load_average'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    bench.say(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The cost of protected fields: `.venv/bin/python bench/encryption.py` (`--quick` for a short run).

One service (`uvicorn wsgi:app`, 2 workers) on a throwaway PostgreSQL serves two tables of the same
columns: `secret`, whose five string/date fields are protected (`AES_256_GCM`; `name` and `email`
searchable), and `plain`, the same table unprotected (`name` declared `unique`, so indexed). Measured, as the
ratio protected / plain (target >= 0.8 for each):

* bulk `POST /t` of 10,000 rows (every row sealed: 5 encryptions and 2 blind indexes), alternating tables;
  these POSTs are also what fills both tables (`--rows`);
* `GET /t?limit=100` (100 rows opened: 500 decryptions) and `GET /t/{pk}` (random keys, wrk);
* `GET /secret?name=eq.<v>` through the blind index against `GET /plain?name=eq.<v>` on the unique index.

Reuses bench/run.py's servers, wrk runs (alternated rounds, medians, the idle-machine wait) and summary
table. See bench/README.md, "Protected fields".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as bench  # noqa: E402  (bench/run.py; it puts the repository on sys.path)

from tests.support.postgres import start_postgres  # noqa: E402

KEY_VARIABLE = "BENCH_ENCRYPTION_KEY"
KEY = base64.b64encode(bytes(range(64, 96))).decode()  # bench only
RATIO_TARGET = 0.8
BULK_ROWS = 10_000
PROTECTED = ("name", "email", "ssn", "born", "notes")
FIELDS = (("id", "integer"), ("name", "string"), ("email", "string"), ("ssn", "string"), ("born", "date"),
          ("notes", "string"), ("age", "integer"), ("balance", "number"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Protected fields against the same table unprotected (PostgreSQL).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 s warm-up, 3 rounds")
    parser.add_argument("--rows", type=int, default=50_000,
                        help="rows per table, posted in bulk POSTs of 10,000 (each one a bulk measurement)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--balance-attempts", type=int, default=8)
    parser.add_argument("--idle-wait", type=float, default=20.0)
    parser.add_argument("--duration", type=float, default=None, help="seconds per run [10; --quick 5]")
    parser.add_argument("--warmup", type=float, default=None, help="[5; --quick 2]")
    parser.add_argument("--rounds", type=int, default=None, help="[5; --quick 3]")
    parser.add_argument("--output", type=Path, default=bench.RESULTS_DIR / "encryption.json")
    args = parser.parse_args(argv)
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.rows = max(BULK_ROWS, args.rows // BULK_ROWS * BULK_ROWS)
    return args


def table(name: str, protected: bool) -> dict[str, Any]:
    fields = []
    for field, kind in FIELDS:
        spec: dict[str, Any] = {"name": field, "type": kind}
        if protected and field in PROTECTED:
            spec.update(protected=True, searchable=field in ("name", "email"))
        if not protected and field == "name":
            spec["constraints"] = {"unique": True}
        fields.append(spec)
    entry = {"name": name, "tableSchema": {"fields": fields, "primaryKey": "id"}}
    if protected:
        entry["encryptionSchema"] = {"*": {"type": "AES_256_GCM", "key": KEY_VARIABLE}}
    return entry


def payload() -> dict[str, Any]:
    paths = {}
    for name in ("plain", "secret"):
        paths[f"/{name}"] = {"get": {}, "post": {}}
        paths[f"/{name}/{{id}}"] = {"get": {}}
    return {"data_resource_schema": {"data": {"dataDictionary": [table("plain", False), table("secret", True)]},
                                     "api": {"apiSpec": {"paths": paths}}}, "ignore_validation": True}


def bulk_body(start: int) -> bytes:
    """10,000 rows, ids implicit; `name<i>` unique across all POSTs (the plain table's name is unique)."""
    rows = [{"name": f"name{i}", "email": f"person{i}@example.org", "ssn": f"{i:09d}",
             "born": f"19{50 + i % 50}-0{1 + i % 9}-1{i % 9}", "notes": f"note {i} " + "x" * (i % 40),
             "age": i % 90, "balance": round(i * 1.25, 2)} for i in range(start, start + BULK_ROWS)]
    return json.dumps(rows).encode()


def fill_and_measure_bulk(service: bench.Server, args: argparse.Namespace) -> dict[str, Any]:
    """Post `--rows` rows to each table in 10,000-row POSTs, alternating which table goes first."""
    times: dict[str, list[float]] = {"secret": [], "plain": []}
    for index in range(args.rows // BULK_ROWS):
        body = bulk_body(index * BULK_ROWS + 1)
        for name in ("secret", "plain") if index % 2 == 0 else ("plain", "secret"):
            bench.wait_until_idle(args.idle_wait)
            with bench.client(service) as http:
                bench.expect(http.get("/health"), 200, "health")
                response, seconds = bench.post_json(http, f"/{name}", body)
            bench.expect(response, 201, f"POST /{name}")
            times[name].append(seconds)
        bench.say(f"  bulk {index + 1}: secret {BULK_ROWS / times['secret'][-1]:,.0f} rows/s, "
                  f"plain {BULK_ROWS / times['plain'][-1]:,.0f} rows/s")
    rate = {name: BULK_ROWS / statistics.median(seconds) for name, seconds in times.items()}
    return {"secret_rows_s": rate["secret"], "plain_rows_s": rate["plain"], "ratio": rate["secret"] / rate["plain"],
            "seconds": times}


def check_same_rows(service: bench.Server, database_url: str, rows: int) -> None:
    """Both tables answer the same rows; the protected table holds no plaintext."""
    with bench.client(service) as http:
        for key in (1, rows // 2, rows):
            secret, plain = http.get(f"/secret/{key}").json(), http.get(f"/plain/{key}").json()
            if secret != plain:
                raise RuntimeError(f"row {key} differs: {secret} != {plain}")
        found = http.get("/secret", params={"name": f"eq.name{rows // 3}"}).json()["secret"]
        if [r["id"] for r in found] != [rows // 3]:
            raise RuntimeError(f"the blind-index lookup found {found}")
    with psycopg_connection(database_url) as connection:
        stored = connection.execute("SELECT name, ssn FROM secret WHERE id = 1").fetchone()
    if stored is None or b"name1" in bytes(stored[0]) or b"000000001" in bytes(stored[1]):
        raise RuntimeError("the protected table holds plaintext")


def psycopg_connection(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def endpoints(rows: int) -> list[tuple[str, bench.Endpoint, bench.Endpoint]]:
    def pk(name: str) -> bench.Endpoint:
        return bench.Endpoint(f"{name}_pk", f"GET /{name}/{{pk}}", f"/{name}/1",
                              (("BENCH_PREFIX", f"/{name}/"), ("BENCH_MAX_ID", str(rows))))

    def lookup(name: str) -> bench.Endpoint:
        return bench.Endpoint(f"{name}_eq", f"GET /{name}?name=eq.<v>", f"/{name}?name=eq.name1",
                              (("BENCH_PREFIX", f"/{name}?name=eq.name"), ("BENCH_MAX_ID", str(rows))))

    def page(name: str) -> bench.Endpoint:
        return bench.Endpoint(f"{name}_list", f"GET /{name}?limit=100", f"/{name}?limit=100")

    return [("GET /t?limit=100", page("secret"), page("plain")),
            ("GET /t/{pk}", pk("secret"), pk("plain")),
            ("GET /t?name=eq.<v> (blind index vs unique index)", lookup("secret"), lookup("plain"))]


def summary(bulk: dict[str, Any], loads: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = [{"metric": f"bulk POST /t, {BULK_ROWS:,} rows (rows/s)", "service": f"{bulk['secret_rows_s']:,.0f}",
             "baseline": f"{bulk['plain_rows_s']:,.0f}", "ratio": f"{bulk['ratio']:.3f}",
             "target": f">= {RATIO_TARGET}", "result": bench.verdict(bulk["ratio"] >= RATIO_TARGET)}]
    for label, result in loads.items():
        rows.append({"metric": f"{label} (req/s)", "service": f"{result['protected_rps']:,.0f}",
                     "baseline": f"{result['plain_rps']:,.0f}", "ratio": f"{result['ratio']:.3f}",
                     "target": f">= {RATIO_TARGET}", "result": bench.verdict(result["ratio"] >= RATIO_TARGET)})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        bench.say("wrk is not installed: `apt-get install -y wrk` (see bench/README.md)")
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="drg-bench-encryption-"))
    bench.say("Starting a throwaway PostgreSQL server ...")
    postgres = start_postgres()
    results: dict[str, Any] = {"options": {k: str(v) for k, v in vars(args).items()}}
    try:
        url = postgres.create_database("bench_encryption")
        service = bench.service_server("service", url, tmp, args.workers)
        service.env[KEY_VARIABLE] = KEY
        with bench.running(service):
            with bench.client(service) as http:
                bench.expect(http.post("/generator", json=payload()), 201, "POST /generator")
            bench.say(f"== bulk POST of {BULK_ROWS:,} rows, {args.rows // BULK_ROWS} per table (fills the tables)")
            results["bulk"] = fill_and_measure_bulk(service, args)
            with psycopg_connection(url) as connection:
                connection.execute("ANALYZE")
            check_same_rows(service, url, args.rows)
            results["loads"] = {}
            for label, protected, plain in endpoints(args.rows):
                bench.say(f"== {label}: protected / plain")
                results["loads"][label] = bench.compare_pair(("protected", service, protected),
                                                             ("plain", service, plain), args)
        results["load_average"] = os.getloadavg()
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summary(results["bulk"], results["loads"])
    results["summary"] = rows
    bench.say("\n(service = protected table, baseline = the same table unprotected)")
    bench.print_summary(rows)
    bench.say(f"load average at the end: {' '.join(f'{v:.1f}' for v in results['load_average'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    bench.say(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

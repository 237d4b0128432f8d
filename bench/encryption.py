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

Requests/s on a 2-core machine shared with other work swing by more than the gap being measured, so each
load is also measured as **CPU time per request** of the service's workers and of their PostgreSQL backends
(`/proc/<pid>/stat`, read before and after each wrk run): other processes slow a request down but do not add
to its CPU time. Ratio plain / protected (>= 0.8: protected costs at most 1.25x the CPU). And before
anything else, the cost per value in this process (`costs_per_value`): AES-GCM alone, a page of the
bench's rows opened, a bulk batch sealed, so the floor that OpenSSL sets is printed beside what we pay.
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
import time
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as bench  # noqa: E402  (bench/run.py; it puts the repository on sys.path)

from generator.crypto import build_ciphers  # noqa: E402
from generator.models.protected import Protection  # noqa: E402
from generator.payload import parse_payload  # noqa: E402
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
    bench.add_run_length_options(parser)
    parser.add_argument("--output", type=Path, default=bench.RESULTS_DIR / "encryption.json")
    args = parser.parse_args(argv)
    bench.settle_run_length(args)
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


class CpuMeter:
    """CPU seconds used by the service's workers and by the PostgreSQL backends serving the bench database
    (the pool's connections; one that appears during a run counts from its start)."""

    def __init__(self, service: bench.Server, database_url: str) -> None:
        self.service, self.database_url = service, database_url
        self.tick = os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[int, float]:
        with psycopg_connection(self.database_url) as connection:
            backends = [pid for (pid,) in connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
        found = {}
        for pid in (*bench.worker_pids(self.service), *backends):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # gone, or another user's process we cannot read
            found[pid] = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
        return found

    @staticmethod
    def used(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def fill_and_measure_bulk(service: bench.Server, args: argparse.Namespace, meter: CpuMeter) -> dict[str, Any]:
    """Post `--rows` rows to each table in 10,000-row POSTs, alternating which table goes first."""
    times: dict[str, list[float]] = {"secret": [], "plain": []}
    cpu: dict[str, list[float]] = {"secret": [], "plain": []}
    for index in range(args.rows // BULK_ROWS):
        body = bulk_body(index * BULK_ROWS + 1)
        for name in ("secret", "plain") if index % 2 == 0 else ("plain", "secret"):
            bench.wait_until_idle(args.idle_wait)
            with bench.client(service) as http:
                bench.expect(http.get("/health"), 200, "health")
                before = meter.snapshot()
                response, seconds = bench.post_json(http, f"/{name}", body)
                cpu[name].append(meter.used(before, meter.snapshot()))
            bench.expect(response, 201, f"POST /{name}")
            times[name].append(seconds)
        bench.say(f"  bulk {index + 1}: secret {BULK_ROWS / times['secret'][-1]:,.0f} rows/s "
                  f"(CPU {cpu['secret'][-1]:.2f} s), plain {BULK_ROWS / times['plain'][-1]:,.0f} rows/s "
                  f"(CPU {cpu['plain'][-1]:.2f} s)")
    rate = {name: BULK_ROWS / statistics.median(seconds) for name, seconds in times.items()}
    used = {name: statistics.median(seconds) for name, seconds in cpu.items()}
    return {"secret_rows_s": rate["secret"], "plain_rows_s": rate["plain"], "ratio": rate["secret"] / rate["plain"],
            "secret_cpu_s": used["secret"], "plain_cpu_s": used["plain"], "cpu_ratio": used["plain"] / used["secret"],
            "seconds": times, "cpu_seconds": cpu}


def cpu_pair(protected: bench.Endpoint, plain: bench.Endpoint, service: bench.Server, meter: CpuMeter,
             args: argparse.Namespace) -> dict[str, Any]:
    """CPU milliseconds per request of each load (alternated rounds, medians); ratio plain / protected. wrk
    runs without the connections-per-worker restarts here: CPU per request does not depend on the spread."""
    used: dict[str, list[float]] = {"protected": [], "plain": []}
    endpoints = {"protected": protected, "plain": plain}
    for index in range(args.rounds):
        for name in ("protected", "plain") if index % 2 == 0 else ("plain", "protected"):
            endpoint = endpoints[name]
            bench.wait_until_idle(args.idle_wait)
            before = meter.snapshot()
            result = bench.run_wrk(service.url + endpoint.path, args, args.duration, endpoint.script_env, None,
                                   endpoint.headers)
            used[name].append(meter.used(before, meter.snapshot()) * 1000 / max(result.requests, 1))
        bench.say(f"  CPU round {index + 1}: protected {used['protected'][-1]:.3f} ms/request, "
                  f"plain {used['plain'][-1]:.3f} ms/request")
    median = {name: statistics.median(values) for name, values in used.items()}
    return {"protected_cpu_ms": median["protected"], "plain_cpu_ms": median["plain"],
            "ratio": median["plain"] / median["protected"], "runs": used}


def costs_per_value(rows: int = 100, repeats: int = 7) -> dict[str, float]:
    """Microseconds of this process's CPU: AES-GCM alone per value (OpenSSL's floor), then the service's own
    code on the bench's `secret` table: a page of `rows` rows opened (per value), the same rows sealed (per
    row: 5 encryptions, 2 blind indexes), one blind-index lookup term."""
    environ = {KEY_VARIABLE: KEY}
    generation = parse_payload(payload())
    ciphers = {f: c for (t, f), c in build_ciphers(generation, environ).items() if t == "secret"}
    protection = Protection(generation.resource("secret"), ciphers)
    plain = [{"id": i, "name": f"name{i}", "email": f"person{i}@example.org", "ssn": f"{i:09d}",
              "born": date(1950 + i % 50, 1 + i % 9, 10 + i % 9), "notes": f"note {i} " + "x" * (i % 40),
              "age": i % 90, "balance": i * 1.25} for i in range(1, rows + 1)]
    if not hasattr(protection, "open_rows"):  # a tree from before the column-wise API (run with --ref-like copies)
        protection.open_rows = lambda rows: [protection.open(row) for row in rows]  # type: ignore[attr-defined]
        protection.seal_rows = lambda rows: [protection.seal(row) for row in rows]  # type: ignore[attr-defined]
    sealed = protection.seal_rows(plain)
    aead, nonce = AESGCM(bytes(32)), bytes(12)
    value = aead.encrypt(nonce, b"sname12345", b"x" * 40)

    def best(work: Any, loops: int) -> float:
        fastest = float("inf")
        for _ in range(repeats):
            started = time.thread_time()
            for _ in range(loops):
                work()
            fastest = min(fastest, (time.thread_time() - started) / loops)
        return fastest * 1e6

    values = rows * len(PROTECTED)
    copies = best(lambda: [dict(row) for row in sealed], 50)
    return {
        "aes_gcm_decrypt_us": best(lambda: [aead.decrypt(nonce, value, b"x" * 40) for _ in range(values)], 20) / values,
        "open_per_value_us": (best(lambda: protection.open_rows([dict(row) for row in sealed]), 50) - copies) / values,
        "seal_per_row_us": best(lambda: protection.seal_rows(plain), 20) / rows,
        "blind_term_us": best(lambda: ciphers["name"].search_terms("name12345"), 2000),
    }


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


def summary(bulk: dict[str, Any], loads: dict[str, dict[str, Any]], cpu: dict[str, dict[str, Any]]
            ) -> list[dict[str, Any]]:
    def row(metric: str, service: str, baseline: str, ratio: float) -> dict[str, Any]:
        return {"metric": metric, "service": service, "baseline": baseline, "ratio": f"{ratio:.3f}",
                "target": f">= {RATIO_TARGET}", "result": bench.verdict(ratio >= RATIO_TARGET)}

    rows = [row(f"bulk POST /t, {BULK_ROWS:,} rows (rows/s)", f"{bulk['secret_rows_s']:,.0f}",
                f"{bulk['plain_rows_s']:,.0f}", bulk["ratio"]),
            row("  the same, CPU s per POST (plain / protected)", f"{bulk['secret_cpu_s']:.2f}",
                f"{bulk['plain_cpu_s']:.2f}", bulk["cpu_ratio"])]
    for label, result in loads.items():
        rows.append(row(f"{label} (req/s)", f"{result['protected_rps']:,.0f}", f"{result['plain_rps']:,.0f}",
                        result["ratio"]))
        if label in cpu:
            used = cpu[label]
            rows.append(row("  the same, CPU ms per request (plain / protected)", f"{used['protected_cpu_ms']:.3f}",
                            f"{used['plain_cpu_ms']:.3f}", used["ratio"]))
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if bench.wrk_missing():
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="drg-bench-encryption-"))
    bench.say("Starting a throwaway PostgreSQL server ...")
    postgres = start_postgres()
    results: dict[str, Any] = {"options": {k: str(v) for k, v in vars(args).items()},
                               "load_average_start": os.getloadavg()}
    costs = results["costs_per_value_us"] = costs_per_value()
    bench.say(f"In this process: AES-GCM decrypt {costs['aes_gcm_decrypt_us']:.2f} us/value (OpenSSL alone); "
              f"a page opened {costs['open_per_value_us']:.2f} us/value; sealed {costs['seal_per_row_us']:.1f} "
              f"us/row (5 values, 2 blind indexes); a blind-index term {costs['blind_term_us']:.1f} us")
    try:
        url = postgres.create_database("bench_encryption")
        service = bench.service_server("service", url, tmp, args.workers)
        service.env[KEY_VARIABLE] = KEY
        with bench.running(service):
            with bench.client(service) as http:
                bench.expect(http.post("/generator", json=payload()), 201, "POST /generator")
            bench.say(f"== bulk POST of {BULK_ROWS:,} rows, {args.rows // BULK_ROWS} per table (fills the tables)")
            meter = CpuMeter(service, url)
            results["bulk"] = fill_and_measure_bulk(service, args, meter)
            with psycopg_connection(url) as connection:
                connection.execute("ANALYZE")
            check_same_rows(service, url, args.rows)
            results["loads"], results["cpu"] = {}, {}
            for label, protected, plain in endpoints(args.rows):
                bench.say(f"== {label}: protected / plain")
                results["loads"][label] = bench.compare_pair(("protected", service, protected),
                                                             ("plain", service, plain), args)
                results["cpu"][label] = cpu_pair(protected, plain, service, meter, args)
        results["load_average"] = os.getloadavg()
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    rows = summary(results["bulk"], results["loads"], results["cpu"])
    results["summary"] = rows
    bench.say("\n(service = protected table, baseline = the same table unprotected)")
    bench.print_summary(rows)
    bench.say(f"load average at the start: {' '.join(f'{v:.1f}' for v in results['load_average_start'])}; "
              f"at the end: {' '.join(f'{v:.1f}' for v in results['load_average'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    bench.say(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

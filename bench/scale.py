"""Scale-out figures: `.venv/bin/python bench/scale.py` (`--quick`: about 3 minutes; the full run 5 to 12).

A throwaway PostgreSQL server (tests/support/postgres.py) and a streaming replica of it (`start_replica`:
`pg_basebackup -R`) hold bench/run.py's throughput table `items` (`--rows` rows, 10 columns). Every figure is
requests/s of `GET /items/{pk}` (random keys, bench/random_pk.lua, wrk), taken with bench/run.py's alternated
rounds and medians, as a ratio of two servers measured in the same run:

1. workers: the service under uvicorn with 2 workers against 1 worker (ratio 2w / 1w). On a 2-core machine
   that also runs wrk and PostgreSQL, the ideal 2.0 is out of reach: this says how much of a second core
   one more worker turns into throughput.
2. replica: 2 workers whose reads go to the streaming replica (DATABASE_REPLICA_URLS) against 2 workers
   reading the primary (ratio replica / primary). Replica and primary share this machine's cores, so this is
   the cost of routing reads to a replica (the chooser, a second pool), not the capacity a replica on its
   own host adds. Which server answered is checked from `pg_stat_database.xact_commit` on both (each read
   is one autocommit transaction): the share of reads the replica served is printed beside the ratio.

3. control (`--sections workers,replica,control`): two identical 2-worker servers on the primary, measured
   the same way. Their ratio should be 1.0; how far it is from 1.0 is the noise of this run, to read the
   other ratios against (on this shared machine, load 2 to 15, it was 0.62, 0.84 and 1.53: with `--quick`,
   differences under about 50% are not resolved; run the full length on an idle machine).

Figures go to stdout (with the load average: other processes on the machine disturb them) and to
bench/results/scale.json. See bench/README.md, "Scale-out".
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import run as bench  # noqa: E402  (bench/run.py; it puts the repository on sys.path)

from tests.support.postgres import ReplicaServer, start_postgres  # noqa: E402

DATABASE = "bench_scale"
STATS_FLUSH_S = 11.0  # idle backends report their statistics within 10 s (PostgreSQL 15: PGSTAT_IDLE_INTERVAL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="GET /items/{pk}: 2 workers vs 1, reads on a streaming replica "
                                                 "vs on the primary (PostgreSQL).",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s runs, 2 s warm-up, 3 rounds, 5 s idle wait")
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the table read by key")
    parser.add_argument("--connections", type=int, default=10, help="wrk -c")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t")
    parser.add_argument("--balance-attempts", type=int, default=8,
                        help="restart a run whose connections went (nearly) all to one worker")
    parser.add_argument("--idle-wait", type=float, default=None,
                        help="before each run, wait up to this long for an idle machine [20; --quick 5]")
    bench.add_run_length_options(parser)
    parser.add_argument("--sections", default="workers,replica",
                        help="comma-separated: workers, replica, control (two identical servers: the noise)")
    parser.add_argument("--output", type=Path, default=bench.RESULTS_DIR / "scale.json")
    parser.add_argument("--keep-temp", action="store_true", help="keep the servers' logs and data directories")
    args = parser.parse_args(argv)
    bench.settle_run_length(args)
    args.idle_wait = args.idle_wait if args.idle_wait is not None else (5.0 if args.quick else 20.0)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - {"workers", "replica", "control"}
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    return args


def prepare(url: str, replica: ReplicaServer, tmp: Path, rows: int) -> None:
    """Generate the throughput tables (through a one-off service), load `items`, let the replica replay it."""
    setup = bench.service_server("setup", url, tmp / "setup", workers=None)
    with bench.running(setup), bench.client(setup) as http:
        response, _ = bench.post_json(http, "/generator", json.dumps(bench.items_payload(["throughput"])).encode())
        bench.expect(response, 201, "POST /generator")
    started = time.perf_counter()
    bench.load_rows_postgres(url, rows)
    replica.wait_caught_up(300)
    bench.say(f"  loaded {rows:,} rows and the replica replayed them in {time.perf_counter() - started:.1f} s")


def commits(libpq_url: str) -> int:
    """Transactions committed in the bench database on one server (each autocommit read is one)."""
    with psycopg.connect(libpq_url, autocommit=True) as connection:
        row = connection.execute("SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (DATABASE,)).fetchone()
    return int(row[0]) if row else 0


def replica_share(server: bench.Server, endpoint: bench.Endpoint, urls: dict[str, str],
                  args: argparse.Namespace) -> dict[str, Any]:
    """Run the load for a few seconds and count the transactions each server committed meanwhile (after
    waiting for the statistics of earlier runs to be reported, and again for this run's)."""
    time.sleep(STATS_FLUSH_S)
    before = {name: commits(url) for name, url in urls.items()}
    load = bench.run_wrk(server.url + endpoint.path, args, 3.0, endpoint.script_env)
    time.sleep(STATS_FLUSH_S)
    counted = {name: commits(url) - before[name] for name, url in urls.items()}
    share = counted["replica"] / max(1, counted["replica"] + counted["primary"])
    bench.say(f"  {load.requests:,} requests: {counted['replica']:,} transactions on the replica, "
              f"{counted['primary']:,} on the primary ({share:.1%} on the replica)")
    return {"requests": load.requests, "transactions": counted, "replica_share": share}


def summary(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    if "workers" in results:
        measured = results["workers"]
        rows.append({"metric": "GET /items/{pk} req/s, 2 uvicorn workers / 1", "service": f"{measured['2w_rps']:.0f}",
                     "baseline": f"{measured['1w_rps']:.0f}", "ratio": f"{measured['ratio']:.3f}", "target": "",
                     "result": "info"})
    if "replica" in results:
        measured = results["replica"]
        rows.append({"metric": "GET /items/{pk} req/s (2 workers), reads on the replica / on the primary",
                     "service": f"{measured['replica_rps']:.0f}", "baseline": f"{measured['primary_rps']:.0f}",
                     "ratio": f"{measured['ratio']:.3f}", "target": "", "result": "info"})
        rows.append({"metric": "share of those reads the replica served", "service": "", "baseline": "",
                     "ratio": f"{results['replica_share']['replica_share']:.3f}", "target": "", "result": "info"})
    if "control" in results:
        measured = results["control"]
        rows.append({"metric": "control: two identical servers, first / second (noise)",
                     "service": f"{measured['first_rps']:.0f}", "baseline": f"{measured['second_rps']:.0f}",
                     "ratio": f"{measured['ratio']:.3f}", "target": "1.0", "result": "info"})
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if bench.wrk_missing():
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="drg-bench-scale-"))
    results: dict[str, Any] = {"options": {k: str(v) for k, v in vars(args).items()},
                               "load_average_start": os.getloadavg()}
    bench.say(f"Starting a throwaway PostgreSQL server and a streaming replica of it (load average "
              f"{' '.join(f'{v:.1f}' for v in os.getloadavg())}) ...")
    postgres = start_postgres()
    replica: ReplicaServer | None = None
    try:
        replica = postgres.start_replica()
        url = postgres.create_database(DATABASE)
        prepare(url, replica, tmp, args.rows)
        endpoint = bench.pk_endpoint(args.rows)
        # Each section starts its own pair of servers, so both of a pair have served the same load before.
        if "workers" in args.sections:
            one = bench.service_server("1w", url, tmp / "1w", workers=1)
            two = bench.service_server("2w", url, tmp / "2w", workers=2)
            with bench.running(one, two):
                bench.say(f"== {endpoint.label}: 2 workers / 1 worker")
                results["workers"] = bench.compare_pair(("2w", two, endpoint), ("1w", one, endpoint), args)
        if "replica" in args.sections:
            on_replica = bench.service_server("replica-2w", url, tmp / "replica-2w", workers=2)
            on_replica.env["DATABASE_REPLICA_URLS"] = replica.url_for(DATABASE)
            on_primary = bench.service_server("primary-2w", url, tmp / "primary-2w", workers=2)
            with bench.running(on_replica, on_primary):
                bench.say(f"== {endpoint.label}, 2 workers each: reads on the replica / on the primary")
                results["replica"] = bench.compare_pair(("replica", on_replica, endpoint),
                                                        ("primary", on_primary, endpoint), args)
                libpq = {"primary": _libpq(url), "replica": _libpq(replica.url_for(DATABASE))}
                results["replica_share"] = replica_share(on_replica, endpoint, libpq, args)
        if "control" in args.sections:
            first = bench.service_server("first-2w", url, tmp / "first-2w", workers=2)
            second = bench.service_server("second-2w", url, tmp / "second-2w", workers=2)
            with bench.running(first, second):
                bench.say(f"== {endpoint.label}, control: two identical servers (2 workers, the primary)")
                results["control"] = bench.compare_pair(("first", first, endpoint), ("second", second, endpoint), args)
        results["load_average_end"] = os.getloadavg()
    finally:
        if args.keep_temp:
            bench.say(f"Kept {tmp} (service logs) and the PostgreSQL servers' directories")
        else:
            if replica is not None:
                replica.destroy()
            postgres.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    rows = summary(results)
    results["summary"] = rows
    bench.say("\n(service = the first of each pair, baseline = the second, measured alternately in this run)")
    bench.print_summary(rows)
    bench.say("load average at the start / end: " + " / ".join(
        " ".join(f"{v:.1f}" for v in results[k]) for k in ("load_average_start", "load_average_end")))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    bench.say(f"Wrote {args.output}")
    return 0


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


if __name__ == "__main__":
    sys.exit(main())

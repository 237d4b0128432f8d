"""Benchmark: time from a regeneration to the last replica serving it, PostgreSQL LISTEN/NOTIFY vs polling.

    .venv/bin/python bench/replicas.py                # 3 replicas, 1 warm-up + 7 rounds per mode, ~1 min
    .venv/bin/python bench/replicas.py --rounds 15 --replicas 4 --poll 1.0 --tables 50
    .venv/bin/python bench/replicas.py --help

Each mode starts its own replicas: `uvicorn` processes on loopback (one worker each) sharing one fresh
database on a throwaway PostgreSQL server (tests/support/postgres.py, or TEST_POSTGRES_URL). Both modes poll
every `--poll` seconds (GENERATION_POLL_SECONDS); in `notify` the generation feed also LISTENs (the default),
in `polling` listening is turned off (`polling_app` below), as where LISTEN cannot work.

A round posts a payload of `--tables` new tables to one replica (the next each round) while every replica's
new route is asked for (GET /<table>, every 5 ms on a kept-alive connection, from before the POST) until all
answer 200. Reported per mode: the time
from the 201 to the last replica serving (median and maximum over rounds), the POST itself for reference,
and the ratio polling / notify of the medians. A random pause of up to one poll interval between rounds puts
the regeneration at a random phase of the poll timers. Figures go to stdout and, with every round, to
bench/results/replicas.json."""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

import httpx  # noqa: E402

from bench.run import Server, say, service_server  # noqa: E402

MODES = ("notify", "polling")
SERVE_LIMIT_S = 30.0  # a replica that has not served a generation by then is a failure, not a figure
POLL_S = 0.005  # how often each replica's new route is asked for (each miss is a quick 404)


def polling_app() -> Any:
    """`uvicorn --factory bench.replicas:polling_app`: the service with LISTEN off, so it only polls."""
    import wsgi

    wsgi.app.runtime.listen = False  # read when the lifespan starts the generation feed
    return wsgi.app


class PollingServer(Server):
    def command(self, port: int) -> list[str]:
        return [*super().command(port), "--factory"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Regeneration to the last replica serving it: NOTIFY vs polling.",
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--replicas", type=int, default=3, help="service processes sharing the database")
    parser.add_argument("--rounds", type=int, default=7, help="measured regenerations per mode (after 1 warm-up)")
    parser.add_argument("--poll", type=float, default=1.0, help="GENERATION_POLL_SECONDS, in both modes")
    parser.add_argument("--tables", type=int, default=10, help="tables (2 fields, 3 routes each) per generation")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: " + ", ".join(MODES))
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results" / "replicas.json")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    return args


def tables_payload(prefix: str, count: int) -> dict[str, Any]:
    dictionary, paths = [], {}
    for index in range(count):
        name = f"{prefix}{index}"
        dictionary.append({"name": name, "tableSchema": {
            "fields": [{"name": "id", "type": "integer"}, {"name": "label", "type": "string"}], "primaryKey": "id"}})
        paths |= {f"/{name}": {"get": {}, "post": {}}, f"/{name}/{{id}}": {"get": {}}}
    return {"data_resource_schema": {"data": {"dataDictionary": dictionary}, "api": {"apiSpec": {"paths": paths}}}}


def replicas_for(mode: str, database_url: str, tmp: Path, args: argparse.Namespace) -> list[Server]:
    servers = []
    for index in range(args.replicas):
        server = service_server(f"{mode}-{index}", database_url, tmp / f"{mode}-{index}", None)
        server.env["GENERATION_POLL_SECONDS"] = str(args.poll)
        if mode == "polling":
            server = PollingServer(server.name, "bench.replicas:polling_app", env=server.env,
                                   log_path=server.log_path, cwd=REPO_ROOT)
        servers.append(server)
    return servers


class Watcher:
    """One thread per replica polling GET `path` every `POLL_S` on a kept-alive connection, from before the
    POST (so no connection or thread start-up counts) until it answers 200."""

    def __init__(self, servers: list[Server], clients: list[httpx.Client], path: str) -> None:
        self.path, self.clients = path, clients
        self.served = [0.0] * len(servers)
        self.ready = threading.Barrier(len(servers) + 1)
        self.threads = [threading.Thread(target=self._watch, args=(i,)) for i in range(len(servers))]
        for thread in self.threads:
            thread.start()
        self.ready.wait(SERVE_LIMIT_S)

    def _watch(self, index: int) -> None:
        http = self.clients[index]
        self.ready.wait(SERVE_LIMIT_S)
        deadline = time.perf_counter() + SERVE_LIMIT_S
        while time.perf_counter() < deadline:
            if http.get(self.path).status_code == 200:
                self.served[index] = time.perf_counter()
                return
            time.sleep(POLL_S)

    def result(self, names: list[str]) -> list[float]:
        """perf_counter() at which each replica first served the path."""
        for thread in self.threads:
            thread.join(SERVE_LIMIT_S + 10)
        missing = [names[i] for i, at in enumerate(self.served) if not at]
        if missing:
            raise RuntimeError(f"{', '.join(missing)} did not serve {self.path} within {SERVE_LIMIT_S:.0f} s")
        return self.served


def one_round(servers: list[Server], clients: list[httpx.Client], number: int,
              args: argparse.Namespace) -> dict[str, Any]:
    poster = number % len(servers)
    prefix = f"r{number}_"
    body = json.dumps(tables_payload(prefix, args.tables)).encode()
    watcher = Watcher(servers, clients, f"/{prefix}0")
    sent = time.perf_counter()
    response = clients[poster].post("/generator", content=body, headers={"content-type": "application/json"})
    accepted = time.perf_counter()
    if response.status_code != 201:
        raise RuntimeError(f"POST /generator to {servers[poster].name}: {response.status_code} {response.text[:500]}")
    served = watcher.result([s.name for s in servers])
    return {"poster": servers[poster].name, "post_s": round(accepted - sent, 4),
            "each_s": [round(max(at - accepted, 0.0), 4) for at in served],
            "last_s": round(max(served) - accepted, 4)}


def measure(mode: str, database_url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    servers = replicas_for(mode, database_url, tmp, args)
    rounds: list[dict[str, Any]] = []
    clients: list[httpx.Client] = []
    try:
        for server in servers:
            server.start()
            clients.append(httpx.Client(base_url=server.url, trust_env=False, timeout=120.0))
        one_round(servers, clients, 0, args)  # warm-up: a process's first generation pays for lazy imports
        for number in range(1, args.rounds + 1):
            time.sleep(random.uniform(0, args.poll))  # a random phase of the replicas' poll timers
            rounds.append(one_round(servers, clients, number, args))
            say(f"  {mode} round {number}: last replica serving {rounds[-1]['last_s']:.3f} s after the 201 "
                f"(each: {', '.join(f'{s:.3f}' for s in rounds[-1]['each_s'])}; POST {rounds[-1]['post_s']:.3f} s)")
    finally:
        for http in clients:
            http.close()
        for server in servers:
            server.stop()
    lasts = [r["last_s"] for r in rounds]
    return {"median_s": statistics.median(lasts), "max_s": max(lasts), "min_s": min(lasts),
            "post_median_s": statistics.median(r["post_s"] for r in rounds), "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    from tests.support.postgres import start_postgres

    args = parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="drg-bench-replicas-"))
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    say("Starting a throwaway PostgreSQL server ...")
    postgres = start_postgres()
    try:
        for mode in args.modes:
            say(f"== {mode}: {args.replicas} replicas, GENERATION_POLL_SECONDS={args.poll}, "
                f"{args.tables} tables per generation")
            results[mode] = measure(mode, postgres.create_database(f"bench_replicas_{mode}"), tmp, args)
    finally:
        postgres.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    say("\nRegeneration (201) -> last replica serving it:")
    for mode in args.modes:
        figures = results[mode]
        say(f"  {mode:<8} median {figures['median_s']:.3f} s, max {figures['max_s']:.3f} s, "
            f"min {figures['min_s']:.3f} s over {args.rounds} rounds (POST itself: {figures['post_median_s']:.3f} s)")
    if set(MODES) <= set(args.modes):
        results["ratio_polling_over_notify"] = round(results["polling"]["median_s"] / results["notify"]["median_s"], 2)
        say(f"  ratio polling / notify (medians): {results['ratio_polling_over_notify']:.1f}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    say(f"Wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark of the service, in one command: `.venv/bin/python bench/run.py` (`--quick` for a short run).

Everything runs through real `uvicorn` processes on loopback, on this machine, in one run:

1. Generation: POST /generator with a payload of N tables x M fields (default 100 x 20, mixed types, every
   table whitelisted with all its /t, /t/{id} and /t/query operations) to a fresh single-process service,
   on SQLite and on PostgreSQL. Measured: POST sent -> 201 received; then the first requests to the
   generated routes; then how long a restart with the saved generation takes to answer /health.
2. Throughput: requests/s of GET /items/{pk} (random keys) and GET /items?limit=100 on a 10-column table of
   200,000 rows, for the service and for the best bare Starlette + SQLAlchemy Core BASELINE
   (bench/baseline_app.py), both under uvicorn with the same number of workers. Service and baseline runs
   alternate; the median of the runs is reported, and the ratio service/baseline.
   On the same servers (`--sections` picks which run; `new` = filter,embed,keyset,bulk): an eq filter on a
   unique (indexed) field against the baseline doing the same query; embedding 100 parents with their
   children against the plain page; on PostgreSQL, the last page (10,000th) of a 1,000,000-row table through
   its keyset cursor against page 1; a bulk POST of 100,000 rows, rows/s (the baseline's bare insert beside).
3. A summary with PASS/FAIL against the targets, also written to bench/results/latest.json.

`--profile` adds py-spy profiles: the service's and the baseline's workers under GET /items/{pk} load (Python
time per request by package, side by side), and one generation per database. `--ref` benchmarks a commit
instead of the work tree. See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.support.postgres import PostgresServer, free_port, start_postgres  # noqa: E402

RESULTS_DIR = BENCH_DIR / "results"
PK_SCRIPT = BENCH_DIR / "random_pk.lua"
READY_TIMEOUT_S = 300.0
GENERATION_TARGET_S = 2.0
PK_RATIO_TARGET = 0.8  # GET /items/{pk}, service / baseline
LIST_RATIO_TARGET = 0.9  # GET /items?limit=100, service / baseline
FILTER_RATIO_TARGET = 0.6  # GET /items?email=eq.<v> (unique, so indexed), service / baseline
KEYSET_TARGET = 2.0  # time of the last keyset page of a 1,000,000-row table over the time of page 1
BULK_TARGET_ROWS_S = 20_000  # POST /bulk of 100,000 rows, rows per second, on PostgreSQL
ENFORCEMENT_TARGET = 0.8  # GET /<t>?limit=100 on a TENANT serving: a reader's JWT / no token (the developer)
TABLE = "items"
PAGES_TABLE = "pages"  # the keyset table: the columns of `items`, --keyset-rows rows (PostgreSQL)
PARENTS_TABLE, CHILDREN_TABLE = "parents", "children"  # for embedding: children(parent_id) -> parents(id)
BULK_TABLE = "bulk"  # the bulk-insert target: the columns of `items`
FILTER_FIELD = "email"  # declared unique, so both databases index it
TENANT_TABLE = "tenanted"  # enforcement: the columns of `items` plus org, tenantId, tenantGroupId
HIDDEN_EVERY = 10  # in `tenanted`, every 10th row is outside the reader's orgs and tenants
# Development mode: a request without credentials is the DEVELOPER (an administrator: no row filter, no JWT
# verification); a request with a JWT signed with this secret (HS256) is verified and bound by its claims.
JWT_SECRET = "bench-only-secret-0123456789abcdef-0123456789"  # >= 32 bytes
PRODUCT, SERVING, OWNER_TEAM, READER_TEAM = "bench-tenancy", "tenanted-api", "OWNER", "READERS"
READER_CLAIMS = {"sub": "reader@bench", "groups": [f"G_TEAM_{READER_TEAM}"], "orgs": ["north", "south"],
                 "tenantIds": [f"t{n}" for n in range(1, 9)], "tenantGroupIds": ["g1"]}
ADMIN_CLAIMS = {"sub": "admin@bench", "groups": ["G_TEAM_PLATFORM_ADMIN"]}
PAGE = 100
SECTIONS = ("generation", "throughput", "filter", "embed", "keyset", "bulk", "enforcement")
NEW_SECTIONS = ("filter", "embed", "keyset", "bulk", "enforcement")
BUSY_WARNING = 0.15

# Every Table Schema type the service accepts; generated tables cycle through them.
FIELD_TYPES = (
    "string", "integer", "number", "boolean", "date", "datetime", "object", "array",
    "time", "year", "yearmonth", "duration", "geopoint", "geojson", "any",
)  # fmt: skip
SAMPLE_VALUES: dict[str, Any] = {
    "string": "some text", "integer": 42, "number": 12.5, "boolean": True, "date": "2024-02-29",
    "datetime": "2024-02-29T10:11:12.123456+02:00", "object": {"a": 1, "b": [1, 2]}, "array": [1, "two", 3.0],
    "time": "10:11:12", "year": 2024, "yearmonth": "2024-02", "duration": "P1DT2H", "geopoint": "10.5,20.25",
    "geojson": {"type": "Point", "coordinates": [10.5, 20.25]}, "any": "anything",
}  # fmt: skip
# The throughput table: 10 columns of common types.
ITEMS_FIELDS = (
    ("id", "integer"), ("name", "string"), ("email", "string"), ("age", "integer"), ("balance", "number"),
    ("active", "boolean"), ("birth_date", "date"), ("created_at", "datetime"), ("notes", "string"),
    ("attributes", "object"),
)  # fmt: skip
TENANCY_FIELDS = (("org", "string"), ("tenantId", "string"), ("tenantGroupId", "string"))
TENANT_FIELDS = ITEMS_FIELDS + TENANCY_FIELDS
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()


# -- options --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark the service: generation time, and requests/s against a plain Starlette baseline.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help="shorter run: 5 s measurements, 2 s warm-up, 3 rounds, 1 generation per database")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--ref", default=None,
                        help="benchmark this git commit or branch (exported with git archive) instead of the work "
                             "tree; bench/ itself always runs from the work tree")
    parser.add_argument("--sections", default="all",
                        help="comma-separated sections to run: " + ", ".join(SECTIONS) + "; `all`, or `new` for "
                             + ",".join(NEW_SECTIONS) + " (keyset runs on PostgreSQL only)")
    parser.add_argument("--skip-generation", action="store_true", help="drop `generation` from --sections")
    parser.add_argument("--skip-throughput", action="store_true", help="drop `throughput` from --sections")
    gen = parser.add_argument_group("generation")
    gen.add_argument("--tables", type=int, default=100, help="tables in the generation payload")
    gen.add_argument("--fields", type=int, default=20, help="fields per table (the key included)")
    gen.add_argument("--gen-rounds", type=int, default=None,
                     help="generations per database, each on a fresh server and database [3; --quick 1]")
    load = parser.add_argument_group("throughput")
    load.add_argument("--rows", type=int, default=200_000, help="rows in the throughput table")
    load.add_argument("--keyset-rows", type=int, default=1_000_000,
                      help="rows in the keyset table (PostgreSQL); its last page of 100 is compared with page 1")
    load.add_argument("--parents", type=int, default=10_000, help="rows in the parents table (embedding)")
    load.add_argument("--children-per-parent", type=int, default=5, help="children rows per parent (embedding)")
    load.add_argument("--bulk-rows", type=int, default=100_000, help="rows in one bulk POST")
    load.add_argument("--tenant-rows", type=int, default=None,
                      help="rows in the multi-tenant table of the enforcement section [--rows]")
    load.add_argument("--bulk-rounds", type=int, default=None,
                      help="bulk POSTs per server (table emptied before each) [3; --quick 1]")
    load.add_argument("--workers", type=int, default=2, help="uvicorn workers, for the service and the baseline")
    load.add_argument("--connections", type=int, default=10,
                      help="concurrent keep-alive connections (wrk -c); 10 saturates 2 cores, and no worker can "
                           "need more database connections than its pool of 10 keeps open")
    load.add_argument("--threads", type=int, default=1, help="load generator threads (wrk -t)")
    load.add_argument("--balance-attempts", type=int, default=8,
                      help="restart a run whose connections went (nearly) all to one worker, up to this many times")
    load.add_argument("--idle-wait", type=float, default=20.0,
                      help="before each run, wait up to this many seconds for other processes to leave the CPUs idle")
    load.add_argument("--duration", type=float, default=None, help="seconds per measured run [10; --quick 5]")
    load.add_argument("--warmup", type=float, default=None,
                      help="seconds of warm-up load per server and endpoint [5; --quick 2]")
    load.add_argument("--rounds", type=int, default=None,
                      help="measured runs per server and endpoint; the median is reported [5; --quick 3]")
    prof = parser.add_argument_group("profiling")
    prof.add_argument("--profile", action="store_true",
                      help="also profile the service with py-spy (pip install py-spy): its workers under "
                           "GET /items/{pk} load (on PostgreSQL if measured), and one generation per database")
    prof.add_argument("--profile-on", default="get_pk",
                      help="comma-separated, what --profile profiles: get_pk, get_list_100, filter_eq (service and "
                           "baseline under load), embed (embed and plain page), bulk (one service bulk POST), "
                           "enforcement, enforcement_pk (a reader's JWT against no token, page / key read)")
    prof.add_argument("--profile-duration", type=float, default=15.0, help="seconds of py-spy sampling under load")
    out = parser.add_argument_group("output")
    out.add_argument("--output", type=Path, default=RESULTS_DIR / "latest.json", help="where to write the JSON")
    out.add_argument("--keep-temp", action="store_true", help="keep the temporary directory (logs, databases)")
    out.add_argument("--strict", action="store_true", help="exit with status 1 if any target is missed")
    args = parser.parse_args(argv)
    quick = args.quick
    args.gen_rounds = args.gen_rounds or (1 if quick else 3)
    args.duration = args.duration or (5.0 if quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if quick else 5.0)
    args.rounds = args.rounds or (3 if quick else 5)
    args.bulk_rounds = args.bulk_rounds or (1 if quick else 3)
    args.tenant_rows = args.tenant_rows or args.rows
    chosen = {s.strip() for s in args.sections.split(",") if s.strip()}
    if "all" in chosen:
        chosen = (chosen - {"all"}) | set(SECTIONS)
    if "new" in chosen:
        chosen = (chosen - {"new"}) | set(NEW_SECTIONS)
    unknown_sections = chosen - set(SECTIONS)
    if unknown_sections:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown_sections))}")
    if args.skip_generation:
        chosen.discard("generation")
    if args.skip_throughput:
        chosen.discard("throughput")
    args.sections = [s for s in SECTIONS if s in chosen]
    args.databases = [d.strip() for d in args.databases.split(",") if d.strip()]
    unknown = set(args.databases) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown database(s): {', '.join(sorted(unknown))}")
    return args


def say(message: str) -> None:
    print(message, flush=True)


# -- payloads and data ----------------------------------------------------------------------------------


def field_name(index: int, kind: str) -> str:
    return f"f{index}_{kind}"


def generation_payload(tables: int, fields: int) -> dict[str, Any]:
    """`tables` tables of `fields` fields (an integer key `id` and a mix of every type), all routes open."""
    dictionary: list[dict[str, Any]] = []
    paths: dict[str, dict[str, Any]] = {}
    for t in range(tables):
        name = f"t{t}"
        columns: list[dict[str, Any]] = [{"name": "id", "type": "integer", "title": "Key",
                                          "description": f"Primary key of {name}", "constraints": {}}]
        for f in range(1, fields):
            kind = FIELD_TYPES[(t + f - 1) % len(FIELD_TYPES)]
            columns.append({"name": field_name(f, kind), "type": kind, "title": f"Field {f} of {name}",
                            "description": f"A {kind} value", "constraints": {}})
        dictionary.append({"@id": f"https://example.org/bench/{name}", "@type": "bh:table", "name": name,
                           "tableSchema": {"fields": columns, "primaryKey": "id"}})
        paths[f"/{name}"] = {"get": {}, "post": {}}
        paths[f"/{name}/{{id}}"] = {"get": {}, "put": {}, "patch": {}, "delete": {}}
        paths[f"/{name}/query"] = {"get": {}, "post": {}}
    return {
        "data_resource_schema": {
            "name": f"Benchmark: {tables} tables x {fields} fields",
            "description": "Generated by bench/run.py",
            "data": {"dataDictionary": dictionary},
            "api": {"apiSpec": {"paths": paths}},
        },
        "ignore_validation": True,
    }


def sample_row(table_index: int, fields: int) -> dict[str, Any]:
    """A valid create body for generated table `t<table_index>` (every field set)."""
    row: dict[str, Any] = {}
    for f in range(1, fields):
        kind = FIELD_TYPES[(table_index + f - 1) % len(FIELD_TYPES)]
        row[field_name(f, kind)] = SAMPLE_VALUES[kind]
    return row


PARENT_FIELDS = (("id", "integer"), ("name", "string"), ("city", "string"), ("score", "integer"))
CHILD_FIELDS = (("id", "integer"), ("parent_id", "integer"), ("label", "string"), ("quantity", "integer"),
                ("price", "number"))  # fmt: skip


def items_payload(sections: list[str] | None = None) -> dict[str, Any]:
    """`items` (its `email` unique), `pages` and `bulk` (the same columns), `parents` and `children`; with the
    enforcement section, `tenanted` (the columns of `items` and the tenancy columns)."""

    def fields(spec: tuple[tuple[str, str], ...], unique: str | None = None) -> list[dict[str, Any]]:
        return [{"name": name, "type": kind, **({"constraints": {"unique": True}} if name == unique else {})}
                for name, kind in spec]

    tables = [
        {"name": TABLE, "tableSchema": {"fields": fields(ITEMS_FIELDS, FILTER_FIELD), "primaryKey": "id"}},
        {"name": PAGES_TABLE, "tableSchema": {"fields": fields(ITEMS_FIELDS), "primaryKey": "id"}},
        {"name": BULK_TABLE, "tableSchema": {"fields": fields(ITEMS_FIELDS), "primaryKey": "id"}},
        {"name": PARENTS_TABLE, "tableSchema": {"fields": fields(PARENT_FIELDS), "primaryKey": "id"}},
        {"name": CHILDREN_TABLE, "tableSchema": {
            "fields": fields(CHILD_FIELDS), "primaryKey": "id",
            "foreignKeys": [{"fields": "parent_id", "reference": {"resource": PARENTS_TABLE, "fields": "id"}}]}},
    ]
    paths = {f"/{TABLE}": {"get": {}}, f"/{TABLE}/{{id}}": {"get": {}}, f"/{PAGES_TABLE}": {"get": {}},
             f"/{BULK_TABLE}": {"get": {}, "post": {}}, f"/{PARENTS_TABLE}": {"get": {}},
             f"/{CHILDREN_TABLE}": {"get": {}}}  # fmt: skip
    if sections is not None and "enforcement" in sections:
        tables.append({"name": TENANT_TABLE, "tableSchema": {"fields": fields(TENANT_FIELDS), "primaryKey": "id"}})
        paths |= {f"/{TENANT_TABLE}": {"get": {}}, f"/{TENANT_TABLE}/{{id}}": {"get": {}}}
    return {
        "data_resource_schema": {
            "name": "Benchmark throughput tables",
            "data": {"dataDictionary": tables},
            "api": {"apiSpec": {"paths": paths}},
        },
        "ignore_validation": True,
    }


def bulk_body(count: int) -> bytes:
    """A JSON array of `count` new rows for `bulk` (no keys: the database assigns them)."""
    names = [name for name, _ in ITEMS_FIELDS]
    rows = []
    for row in item_rows(count, seed=7):
        record = dict(zip(names, row, strict=True))
        del record["id"]
        record["balance"] = float(record["balance"])
        record["birth_date"] = record["birth_date"].isoformat()
        record["attributes"] = json.loads(record["attributes"])
        rows.append(record)
    return json.dumps(rows).encode()


def load_extra_postgres(url: str, args: argparse.Namespace) -> None:
    """`pages` (keyset section) copied from `items` server-side; `parents` and `children` (embed section)."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    columns = ", ".join(name for name, _ in ITEMS_FIELDS)
    others = ", ".join(f"i.{name}" for name, _ in ITEMS_FIELDS[1:])
    with psycopg.connect(libpq, autocommit=True) as conn:
        if "keyset" in args.sections:
            conn.execute(f"INSERT INTO {PAGES_TABLE} ({columns}) SELECT g, {others} FROM generate_series(1, %s) g "
                         f"JOIN {TABLE} i ON i.id = (g - 1) %% %s + 1", (args.keyset_rows, args.rows))
            conn.execute(f"VACUUM ANALYZE {PAGES_TABLE}")
        if "embed" in args.sections:
            conn.execute(f"INSERT INTO {PARENTS_TABLE} (id, name, city, score) SELECT g, 'Parent ' || g, "
                         "'City ' || (g %% 97), g %% 1000 FROM generate_series(1, %s) g", (args.parents,))
            conn.execute(f"INSERT INTO {CHILDREN_TABLE} (id, parent_id, label, quantity, price) SELECT g, "
                         "(g - 1) %% %s + 1, 'Child ' || g, g %% 50, (g %% 10000) / 100.0 "
                         "FROM generate_series(1, %s) g",
                         (args.parents, args.parents * args.children_per_parent))  # fmt: skip
            conn.execute(f"VACUUM ANALYZE {PARENTS_TABLE}")
            conn.execute(f"VACUUM ANALYZE {CHILDREN_TABLE}")
        for table in (PAGES_TABLE, PARENTS_TABLE, CHILDREN_TABLE):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                         f"GREATEST((SELECT max(id) FROM {table}), 1))")


def load_extra_sqlite(url: str, args: argparse.Namespace) -> None:
    path = make_url(url).database
    assert path
    conn = sqlite3.connect(path)
    try:
        if "embed" in args.sections:
            conn.executemany(f"INSERT INTO {PARENTS_TABLE} (id, name, city, score) VALUES (?, ?, ?, ?)",
                             ((g, f"Parent {g}", f"City {g % 97}", g % 1000) for g in range(1, args.parents + 1)))
            conn.executemany(f"INSERT INTO {CHILDREN_TABLE} (id, parent_id, label, quantity, price) "
                             "VALUES (?, ?, ?, ?, ?)",
                             ((g, (g - 1) % args.parents + 1, f"Child {g}", g % 50, (g % 10000) / 100)
                              for g in range(1, args.parents * args.children_per_parent + 1)))  # fmt: skip
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


def empty_table(url: str, table: str) -> None:
    if make_url(url).get_backend_name() == "sqlite":
        conn = sqlite3.connect(make_url(url).database or "")
        try:
            conn.execute(f"DELETE FROM {table}")
            conn.commit()
        finally:
            conn.close()
        return
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {table}")


def item_rows(count: int, seed: int = 42) -> Iterator[tuple[Any, ...]]:
    """Deterministic rows in ITEMS_FIELDS order; ids 1..count. Datetimes in the service's canonical text."""
    rng = random.Random(seed)
    born, epoch = date(1940, 1, 1), datetime(2020, 1, 1, tzinfo=UTC)
    tiers = ("free", "basic", "pro", "enterprise")
    for i in range(1, count + 1):
        created = epoch + timedelta(seconds=rng.randrange(10**8), microseconds=rng.randrange(1, 10**6))
        attributes = {"tier": rng.choice(tiers), "score": rng.randrange(100),
                      "tags": rng.sample(WORDS, 3)}  # fmt: skip
        yield (
            i,
            f"Customer {i}",
            f"customer{i}@example.org",
            rng.randrange(18, 90),
            Decimal(rng.randrange(10**8)) / 100,
            rng.random() < 0.5,
            born + timedelta(days=rng.randrange(25_000)),
            created.isoformat(timespec="microseconds"),
            " ".join(rng.choices(WORDS, k=rng.randrange(4, 12))),
            json.dumps(attributes),
        )


def load_rows_postgres(url: str, count: int) -> None:
    columns = ", ".join(name for name, _ in ITEMS_FIELDS)
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        with conn.cursor() as cursor, cursor.copy(f"COPY {TABLE} ({columns}) FROM STDIN") as copy:
            for row in item_rows(count):
                copy.write_row(row)
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), %s)", (count,))
        conn.execute(f"VACUUM ANALYZE {TABLE}")


def tenancy(i: int) -> tuple[str, str, str]:
    """org, tenantId, tenantGroupId of row `i` of `tenanted`. The reader (READER_CLAIMS: orgs north and south,
    tenants t1..t8, tenant group g1) sees every row but every HIDDEN_EVERY-th: those are in org east, or in
    org north with tenant t9 of group g9. Of the rows it sees, every 7th is tenant `unrestricted` (visible to
    its whole org) and every 13th tenant t20 of group g1 (visible through the group), the rest t1..t8."""
    org = "north" if i % 2 else "south"
    if i % HIDDEN_EVERY == 0:
        return ("east", "t1", "g1") if i % (2 * HIDDEN_EVERY) == 0 else ("north", "t9", "g9")
    if i % 13 == 0:
        return org, "t20", "g1"
    if i % 7 == 0:
        return org, "unrestricted", "g2"
    return org, f"t{i % 8 + 1}", "g2"


def reader_sees(i: int) -> bool:
    return i % HIDDEN_EVERY != 0


def tenant_rows(count: int) -> Iterator[tuple[Any, ...]]:
    for row in item_rows(count):
        yield (*row, *tenancy(row[0]))


def load_tenanted_postgres(url: str, count: int) -> None:
    columns = ", ".join(f'"{name}"' for name, _ in TENANT_FIELDS)
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True) as conn:
        with conn.cursor() as cursor, cursor.copy(f"COPY {TENANT_TABLE} ({columns}) FROM STDIN") as copy:
            for row in tenant_rows(count):
                copy.write_row(row)
        conn.execute(f"SELECT setval(pg_get_serial_sequence('{TENANT_TABLE}', 'id'), %s)", (count,))
        conn.execute(f"VACUUM ANALYZE {TENANT_TABLE}")


def load_tenanted_sqlite(url: str, count: int) -> None:
    path = make_url(url).database
    assert path
    placeholders = ", ".join("?" for _ in TENANT_FIELDS)
    columns = ", ".join(f'"{name}"' for name, _ in TENANT_FIELDS)

    def converted() -> Iterator[tuple[Any, ...]]:
        for row in tenant_rows(count):
            values = list(row)
            values[4] = float(values[4])
            values[5] = int(values[5])
            values[6] = values[6].isoformat()
            yield tuple(values)

    conn = sqlite3.connect(path)
    try:
        conn.executemany(f"INSERT INTO {TENANT_TABLE} ({columns}) VALUES ({placeholders})", converted())
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


def load_rows_sqlite(url: str, count: int) -> None:
    path = make_url(url).database
    assert path
    placeholders = ", ".join("?" for _ in ITEMS_FIELDS)
    columns = ", ".join(name for name, _ in ITEMS_FIELDS)

    def converted() -> Iterator[tuple[Any, ...]]:
        for row in item_rows(count):
            values = list(row)
            values[4] = float(values[4])  # number: REAL on SQLite
            values[5] = int(values[5])
            values[6] = values[6].isoformat()
            yield tuple(values)

    conn = sqlite3.connect(path)
    try:
        conn.executemany(f"INSERT INTO {TABLE} ({columns}) VALUES ({placeholders})", converted())
        conn.commit()
        conn.execute("ANALYZE")
    finally:
        conn.close()


# -- servers --------------------------------------------------------------------------------------------


class Server:
    """One uvicorn process (a master and its workers when workers > 1), on a free loopback port."""

    def __init__(self, name: str, app: str, *, env: dict[str, str], log_path: Path, workers: int | None = None,
                 app_dir: Path | None = None, cwd: Path = REPO_ROOT) -> None:
        self.name, self.app, self.env, self.log_path, self.workers, self.app_dir, self.cwd = (
            name, app, env, log_path, workers, app_dir, cwd)  # fmt: skip
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None

    def command(self, port: int) -> list[str]:
        command = [sys.executable, "-m", "uvicorn", self.app, "--host", "127.0.0.1", "--port", str(port),
                   "--no-access-log", "--log-level", "warning"]  # fmt: skip
        if self.app_dir is not None:
            command += ["--app-dir", str(self.app_dir)]
        if self.workers is not None:
            command += ["--workers", str(self.workers)]
        return command

    def start(self) -> float:
        """Launch and wait for GET /health = 200; return the seconds that took."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        command = self.command(port)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        with self.log_path.open("ab") as log:
            log.write(f"--- {' '.join(command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(command, cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = started + READY_TIMEOUT_S
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0, trust_env=False).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not healthy within {READY_TIMEOUT_S:.0f} s; log:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


SERVICE_ROOT = [REPO_ROOT]  # where `wsgi:app` is imported from: the work tree, or an export of --ref


def service_server(name: str, database_url: str, workdir: Path, workers: int | None) -> Server:
    (workdir / "data").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "AUTH_TOKENS", "APP_ENV")
           and not k.startswith("JWT_")}
    env.update(APP_ENV="development", DATABASE_URL=database_url, DATA_DIR=str(workdir / "data"),
               PAYLOAD_PATH=str(workdir / "payload.json"), PYTHONUNBUFFERED="1",
               MAX_BODY_BYTES=str(256 * 1024 * 1024),  # the bulk POST is about 25 MB
               JWT_SECRET=JWT_SECRET)  # fmt: skip  (HS256 JWTs verified; no token is still the developer)
    return Server(name, "wsgi:app", env=env, log_path=workdir / f"{name}.log", workers=workers,
                  cwd=SERVICE_ROOT[0])


def baseline_server(name: str, database_url: str, workdir: Path, workers: int) -> Server:
    env = dict(os.environ, BASELINE_DATABASE_URL=database_url, BASELINE_TABLE=TABLE, PYTHONUNBUFFERED="1",
               BASELINE_FILTER_FIELD=FILTER_FIELD, BASELINE_BULK_TABLE=BULK_TABLE,
               BASELINE_NUMBER_FIELDS=",".join(n for n, kind in ITEMS_FIELDS if kind == "number"))
    return Server(name, "baseline_app:app", env=env, log_path=workdir / f"{name}.log", workers=workers,
                  app_dir=BENCH_DIR)


@contextmanager
def running(*servers: Server) -> Iterator[None]:
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


def client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, trust_env=False, timeout=600.0)


def post_json(http: httpx.Client, path: str, body: bytes) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    return response, time.perf_counter() - started


def timed_get(http: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = http.get(path)
    return response, time.perf_counter() - started


def expect(response: httpx.Response, status: int, what: str) -> None:
    if response.status_code != status:
        raise RuntimeError(f"{what}: expected {status}, got {response.status_code}: {response.text[:2000]}")


# -- 1. generation --------------------------------------------------------------------------------------


def measure_generation(db: str, new_database: Callable[[str], str], args: argparse.Namespace,
                       tmp: Path) -> dict[str, Any]:
    payload = generation_payload(args.tables, args.fields)
    body = json.dumps(payload).encode()
    last = args.tables - 1
    rounds: list[dict[str, Any]] = []
    say(f"\n== Generation on {db}: {args.tables} tables x {args.fields} fields, payload {len(body) / 1024:.0f} KiB, "
        f"{args.gen_rounds} round(s), each on a fresh single-process server and database")
    for index in range(args.gen_rounds):
        workdir = tmp / f"gen-{db}-{index}"
        server = service_server("service", new_database(f"gen_{index}"), workdir, workers=None)
        result: dict[str, Any] = {"server_start_s": server.start()}
        try:
            with client(server) as http:
                expect(http.get("/health"), 200, "health")  # the keep-alive connection is open before timing
                result["busy_before"] = round(wait_until_idle(args.idle_wait), 3)
                response, result["post_to_201_s"] = post_json(http, "/generator", body)
                expect(response, 201, "POST /generator")
                result["server_reported_s"] = response.json().get("seconds")
                response, result["first_list_s"] = timed_get(http, "/t0?limit=10")
                expect(response, 200, "first GET /t0")
                response, result["first_create_s"] = post_json(http, "/t0", json.dumps(sample_row(0, args.fields))
                                                               .encode())
                expect(response, 201, "first POST /t0")
                created = response.json()["id"]
                response, result["first_read_s"] = timed_get(http, f"/t0/{created}")
                expect(response, 200, "first GET /t0/{id}")
                response, result["first_read_last_table_s"] = timed_get(http, f"/t{last}/1")
                expect(response, 404, f"first GET /t{last}/1 (empty table)")
                response, result["warm_list_s"] = timed_get(http, "/t0?limit=10")
                expect(response, 200, "second GET /t0")
        finally:
            server.stop()
        # A restart rebuilds all routes from the saved payload before it answers.
        result["restart_to_healthy_s"] = server.start()
        try:
            with client(server) as http:
                expect(http.get(f"/t0/{created}"), 200, "GET /t0/{id} after restart")
        finally:
            server.stop()
        rounds.append(result)
        say(f"  round {index + 1}: POST->201 {result['post_to_201_s']:.3f} s (server says "
            f"{result['server_reported_s']} s); first GET /t0 {ms(result['first_list_s'])}, first POST /t0 "
            f"{ms(result['first_create_s'])}, first GET /t0/{{id}} {ms(result['first_read_s'])}; restart "
            f"{result['restart_to_healthy_s']:.2f} s")
    keys = [k for k in rounds[0] if k.endswith("_s") and isinstance(rounds[0][k], float)]
    return {
        "payload_bytes": len(body),
        "operations": 8 * args.tables,
        "rounds": rounds,
        "median": {k: statistics.median(r[k] for r in rounds) for k in keys},
        "max": {k: max(r[k] for r in rounds) for k in keys},
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# -- 2. throughput --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    rps: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    connections_per_worker: tuple[int, ...] = ()  # sampled mid-run; uneven = the kernel favoured one worker
    attempts: int = 1  # runs started to get one whose connections were spread over the workers
    busy_before: float = 0.0  # CPU use of the whole machine just before, with our servers idle


UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _latency(text: str, percentile: str) -> float:
    found = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.MULTILINE)
    return float(found.group(1)) * UNITS_MS[found.group(2)] if found else float("nan")


def worker_pids(server: Server) -> list[int]:
    """The uvicorn worker processes (spawned children of the master), or the master if it serves alone."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children")
    try:
        pids = [int(p) for p in children.read_text().split()]
    except OSError:
        return []
    workers = []
    for pid in pids:
        try:
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
        except OSError:
            continue
    return workers or [server.pid]


def balanced(spread: tuple[int, ...], connections: int) -> bool:
    """Every worker holds at least half an equal share of the connections (and at least 2)."""
    if len(spread) < 2:
        return True
    return min(spread) >= max(2, connections // (2 * len(spread)))


def connections_per_worker(server: Server) -> tuple[int, ...]:
    """Established client connections held by each worker process (from `ss`), largest first."""
    port = server.url.rsplit(":", 1)[1]
    done = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{port} )"], capture_output=True,
                          text=True, check=False)  # fmt: skip
    owners = Counter(int(pid) for pid in re.findall(r"pid=(\d+)", done.stdout))
    return tuple(sorted((owners.get(pid, 0) for pid in worker_pids(server)), reverse=True))


def run_wrk(url: str, args: argparse.Namespace, duration: float, script: dict[str, str] | None,
            server: Server | None = None, headers: tuple[tuple[str, str], ...] = ()) -> LoadResult:
    """One wrk run. With `server`: sample how its workers share the connections one second in, and when the
    kernel has handed (nearly) all of them to one worker, stop and start again (up to --balance-attempts).
    `headers` are sent with every request (wrk -H; the Lua script's requests carry them too)."""
    seconds = max(1, round(duration))
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers:
        command += ["-H", f"{name}: {value}"]
    env = dict(os.environ)
    if script is not None:
        command += ["-s", str(PK_SCRIPT)]
        env.update({"BENCH_SEED": "42", "BENCH_SUFFIX": "", **script})
    attempts = 0
    while True:
        attempts += 1
        process = subprocess.Popen([*command, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=env)  # fmt: skip
        spread: tuple[int, ...] = ()
        if server is not None and shutil.which("ss"):
            time.sleep(min(1.0, seconds / 2))
            spread = connections_per_worker(server)
            if not balanced(spread, args.connections) and attempts < args.balance_attempts:
                process.terminate()
                process.communicate()
                time.sleep(0.5)  # let the server finish what the closed connections had in flight
                continue
        break
    out, err = process.communicate(timeout=seconds + 120)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {out}{err}")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if rps is None or total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return LoadResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        p50_ms=_latency(out, "50"),
        p90_ms=_latency(out, "90"),
        p99_ms=_latency(out, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in sockets.groups()) if sockets else 0,
        connections_per_worker=spread,
        attempts=attempts,
    )


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    path: str  # for wrk's URL; with `script`, the Lua script makes the paths (random keys)
    script: tuple[tuple[str, str], ...] | None = None  # environment of random_pk.lua
    headers: tuple[tuple[str, str], ...] = ()  # sent with every request (wrk -H)

    @property
    def script_env(self) -> dict[str, str] | None:
        return None if self.script is None else dict(self.script)


def pk_endpoint(rows: int) -> Endpoint:
    return Endpoint("get_pk", f"GET /{TABLE}/{{pk}}", f"/{TABLE}/1",
                    (("BENCH_PREFIX", f"/{TABLE}/"), ("BENCH_MAX_ID", str(rows))))


def filter_endpoint(rows: int) -> Endpoint:
    return Endpoint("filter_eq", f"GET /{TABLE}?{FILTER_FIELD}=eq.<random>", f"/{TABLE}?{FILTER_FIELD}=eq.x",
                    (("BENCH_PREFIX", f"/{TABLE}?{FILTER_FIELD}=eq.customer"), ("BENCH_SUFFIX", "@example.org"),
                     ("BENCH_MAX_ID", str(rows))))  # fmt: skip


LIST_ENDPOINT = Endpoint("get_list_100", f"GET /{TABLE}?limit=100", f"/{TABLE}?limit=100")
ENDPOINT_KEYS = ("get_pk", "get_list_100")  # the `throughput` section, service against baseline
TARGETS = {"get_pk": PK_RATIO_TARGET, "get_list_100": LIST_RATIO_TARGET, "filter_eq": FILTER_RATIO_TARGET}


def compare(service: Server, baseline: Server, endpoint: Endpoint, args: argparse.Namespace) -> dict[str, Any]:
    """Warm both up, then alternate service and baseline runs; medians and their ratio service / baseline."""
    return compare_pair(("service", service, endpoint), ("baseline", baseline, endpoint), args)


def compare_pair(first: tuple[str, Server, Endpoint], second: tuple[str, Server, Endpoint],
                 args: argparse.Namespace) -> dict[str, Any]:
    """Two loads (two servers, or two paths of one server), warmed up, then alternated `--rounds` times;
    the median requests/s of each and the ratio first / second."""
    pair = {name: (server, endpoint) for name, server, endpoint in (first, second)}
    names = [first[0], second[0]]
    busy = wait_until_idle(args.idle_wait)
    if args.warmup > 0:
        for server, endpoint in pair.values():
            run_wrk(server.url + endpoint.path, args, args.warmup, endpoint.script_env, headers=endpoint.headers)
    runs: dict[str, list[LoadResult]] = {name: [] for name in names}
    for index in range(args.rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            server, endpoint = pair[name]
            before = wait_until_idle(args.idle_wait)
            result = run_wrk(server.url + endpoint.path, args, args.duration, endpoint.script_env, server,
                             endpoint.headers)
            result = replace(result, busy_before=round(before, 3))
            runs[name].append(result)
            if result.non_2xx or result.socket_errors:
                say(f"  WARNING: {name} answered {result.non_2xx} non-2xx, {result.socket_errors} socket errors")
        a, b = runs[names[0]][-1], runs[names[1]][-1]
        say(f"  round {index + 1}: {names[0]} {a.rps:7.0f} req/s (p99 {a.p99_ms:6.1f} ms, connections per worker "
            f"{spread_text(a)})   {names[1]} {b.rps:7.0f} req/s (p99 {b.p99_ms:6.1f} ms, {spread_text(b)})")
        unbalanced = [n for n, r in ((names[0], a), (names[1], b)) if not balanced(r.connections_per_worker,
                                                                                   args.connections)]
        if unbalanced:
            say(f"  WARNING: {' and '.join(unbalanced)} served this round with its connections on one worker")
    median = {name: statistics.median(r.rps for r in results) for name, results in runs.items()}
    p50 = {name: statistics.median(r.p50_ms for r in results) for name, results in runs.items()}
    p99 = {name: statistics.median(r.p99_ms for r in results) for name, results in runs.items()}
    ratio = median[names[0]] / median[names[1]] if median[names[1]] else float("nan")
    spread = {name: (max(r.rps for r in results) - min(r.rps for r in results)) / median[name]
              for name, results in runs.items() if median[name]}  # fmt: skip
    say("  median: " + " | ".join(f"{n} {median[n]:.0f} req/s (p50 {p50[n]:.2f} ms, p99 {p99[n]:.2f} ms)"
                                  for n in names) + f" | ratio {ratio:.3f}")
    return {
        "endpoint": " vs ".join(dict.fromkeys(e.label for _, _, e in (first, second))),
        "idle_check_busy": round(busy, 3),
        **{f"{n}_rps": median[n] for n in names},
        "ratio": ratio,
        **{f"{n}_p50_ms": p50[n] for n in names},
        **{f"{n}_p99_ms": p99[n] for n in names},
        "spread": spread,
        "errors": sum(r.non_2xx + r.socket_errors for results in runs.values() for r in results),
        "disturbed_runs": sum(r.busy_before > BUSY_WARNING for results in runs.values() for r in results),
        "unbalanced_runs": sum(not balanced(r.connections_per_worker, args.connections)
                               for results in runs.values() for r in results),
        "runs": {name: [asdict(r) for r in results] for name, results in runs.items()},
    }


def spread_text(result: LoadResult) -> str:
    return "/".join(str(n) for n in result.connections_per_worker) or "?"


def cpu_times() -> tuple[int, int]:
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_until_idle(limit_s: float) -> float:
    """Wait (up to `limit_s`) until the machine is idle but for us; return the last busy fraction seen."""
    deadline = time.monotonic() + limit_s
    while True:
        busy = machine_busy(0.5)
        if busy <= BUSY_WARNING:
            return busy
        if time.monotonic() >= deadline:
            say(f"  WARNING: the machine is {busy:.0%} busy while our servers are idle: other processes are "
                f"running and will disturb the figures ({'; '.join(busiest_processes()) or 'unknown'})")
            return busy
        time.sleep(0.5)


def process_cpu_ticks() -> dict[int, int]:
    ticks = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            ticks[int(entry.name)] = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks


def busiest_processes(seconds: float = 0.5, count: int = 3) -> list[str]:
    """The processes that used the most CPU over `seconds`: who is disturbing the measurement."""
    before = process_cpu_ticks()
    time.sleep(seconds)
    after = process_cpu_ticks()
    used = sorted(((n - before.get(pid, n), pid) for pid, n in after.items()), reverse=True)[:count]
    hz = os.sysconf("SC_CLK_TCK")
    named = []
    for ticks, pid in used:
        if ticks <= 0:
            continue
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            command = "?"
        named.append(f"{ticks / hz / seconds:.0%} pid {pid} {command.strip()[:60]}")
    return named


def machine_busy(seconds: float = 1.0) -> float:
    """Fraction of all CPUs busy over `seconds`, measured while our servers are idle (0 if unknown)."""
    try:
        busy0, total0 = cpu_times()
        time.sleep(seconds)
        busy1, total1 = cpu_times()
    except (OSError, ValueError, IndexError):
        return 0.0
    return (busy1 - busy0) / max(1, total1 - total0)


def same_responses(service: Server, baseline: Server, rows: int) -> tuple[list[str], list[str]]:
    """The two apps must return the same rows, or the comparison means nothing: (problems, notes). Links
    are compared too; a difference there (but not in the rows) is only a note."""
    problems, notes = [], []
    paths = [f"/{TABLE}/1", f"/{TABLE}/{rows // 2}", f"/{TABLE}/{rows}", f"/{TABLE}?limit=100",
             f"/{TABLE}?offset=50&limit=7", f"/{TABLE}?{FILTER_FIELD}=eq.customer{rows // 3}@example.org",
             f"/{TABLE}?{FILTER_FIELD}=eq.nobody@example.org"]  # fmt: skip
    with client(service) as s_http, client(baseline) as b_http:
        for path in paths:
            s, b = s_http.get(path), b_http.get(path)
            if s.status_code != 200 or b.status_code != 200:
                problems.append(f"{path}: service {s.status_code}, baseline {b.status_code}")
                continue
            sj, bj = s.json(), b.json()
            if sj == bj:
                continue
            s_rows = sj.get(TABLE) if "links" in sj else sj
            b_rows = bj.get(TABLE) if "links" in bj else bj
            if s_rows != b_rows:
                problems.append(f"{path}: rows differ\n    service:  {s.text[:300]}\n    baseline: {b.text[:300]}")
            else:
                notes.append(f"{path}: same rows, links differ\n    service:  {sj.get('links')}\n"
                             f"    baseline: {bj.get('links')}")
    return problems, notes


def measure_throughput(db: str, new_database: Callable[[str], str], args: argparse.Namespace, tmp: Path,
                       profile: bool) -> dict[str, Any]:
    sections = [s for s in args.sections if s != "generation" and (s != "keyset" or db == "postgresql")]
    say(f"\n== Throughput on {db} ({', '.join(sections)}): table {TABLE!r}, {len(ITEMS_FIELDS)} columns, "
        f"{args.rows:,} rows; {args.workers} uvicorn workers each; wrk -t{args.threads} -c{args.connections}, "
        f"{args.rounds} x {args.duration:g} s per load after {args.warmup:g} s warm-up")
    url = new_database("rps")
    workdir = tmp / f"rps-{db}"
    setup = service_server("setup", url, workdir, workers=None)
    with running(setup), client(setup) as http:
        response, _ = post_json(http, "/generator", json.dumps(items_payload(sections)).encode())
        expect(response, 201, "POST /generator (throughput tables)")
        if "enforcement" in sections:
            set_up_product(http)
    started = time.perf_counter()
    (load_rows_sqlite if db == "sqlite" else load_rows_postgres)(url, args.rows)
    (load_extra_sqlite if db == "sqlite" else load_extra_postgres)(url, args)
    if "enforcement" in sections:
        (load_tenanted_sqlite if db == "sqlite" else load_tenanted_postgres)(url, args.tenant_rows)
    say(f"  loaded {args.rows:,} rows" + (f", {args.keyset_rows:,} in {PAGES_TABLE!r}" if "keyset" in sections else "")
        + (f", {args.parents:,} parents with {args.children_per_parent} children each" if "embed" in sections else "")
        + (f", {args.tenant_rows:,} in {TENANT_TABLE!r}" if "enforcement" in sections else "")
        + f" in {time.perf_counter() - started:.1f} s")
    service = service_server("service", url, workdir, workers=args.workers)
    baseline = baseline_server("baseline", url, workdir, workers=args.workers)
    result: dict[str, Any] = {"rows": args.rows, "columns": len(ITEMS_FIELDS), "sections": sections}
    pk, filtered = pk_endpoint(args.rows), filter_endpoint(args.rows)
    endpoints = {"get_pk": pk, "get_list_100": LIST_ENDPOINT, "filter_eq": filtered}
    with running(service, baseline):
        problems, notes = same_responses(service, baseline, args.rows)
        result["responses_identical"] = not problems
        result["response_notes"] = notes
        for problem in problems:
            say(f"  WARNING: {problem}")
        for note in notes:
            say(f"  note: {note}")
        with client(service) as http:
            result["list_100_bytes"] = len(http.get(f"/{TABLE}?limit=100").content)
            result["pk_bytes"] = len(http.get(f"/{TABLE}/1").content)
        if "throughput" in sections:
            for key in ENDPOINT_KEYS:
                say(f"  -- {endpoints[key].label}: service vs baseline")
                result[key] = compare(service, baseline, endpoints[key], args)
        if "filter" in sections:
            say(f"  -- {filtered.label} ({FILTER_FIELD} is unique, so indexed): service vs baseline")
            result["filter_eq"] = compare(service, baseline, filtered, args)
        if "embed" in sections:
            result["embed"] = measure_embed(service, args, profile)
        if "keyset" in sections:
            result["keyset"] = measure_keyset(service, args)
        if "bulk" in sections:
            result["bulk"] = measure_bulk(service, baseline, url, args, profile)
        if "enforcement" in sections:
            result |= measure_enforcement(service, args, profile)
        if profile:
            for key in [k.strip() for k in args.profile_on.split(",") if k.strip()]:
                if key in endpoints:
                    result[f"profile_{key}"] = profile_under_load(service, baseline, endpoints[key], args)
    return result


def bearer(claims: dict[str, Any]) -> str:
    """An HS256 JWT with `claims`, valid for a day, signed with the service's JWT_SECRET."""
    import jwt  # PyJWT, a dependency of the service

    now = int(time.time())
    return jwt.encode({**claims, "iat": now, "exp": now + 86_400}, JWT_SECRET, algorithm="HS256")


def set_up_product(http: httpx.Client) -> None:
    """As the developer (no token, development mode): data product PRODUCT owned by team OWNER, marked
    multi-tenant, an api serving of TENANT_TABLE with accessRestriction TENANT (default tenancy columns org,
    tenantId, tenantGroupId), granted to team READERS."""
    steps = (
        ("PUT", f"/data-products/{PRODUCT}", {"owner": OWNER_TEAM, "multiTenant": True,
                                              "description": "bench/run.py: the enforcement section"}, 201),
        ("POST", f"/data-products/{PRODUCT}/servings", {"servingName": SERVING, "servingType": "api",
                                                        "schemaId": TENANT_TABLE, "accessRestriction": "TENANT"}, 201),
        ("PUT", f"/data-products/{PRODUCT}/access", {"grantee": READER_TEAM, "servings": [SERVING]}, None),
    )  # fmt: skip
    for method, path, body, status in steps:
        response = http.request(method, path, json=body)
        if status is None and response.is_success:
            continue
        expect(response, status or 200, f"{method} {path}")


def check_enforcement(service: Server, reader: str, admin: str) -> dict[str, Any]:
    """The row filter is really applied before anything is measured: the reader's first page holds only rows
    it may see, the developer's holds the hidden ones too; hidden keys are 404 for the reader."""
    auth = {"authorization": f"Bearer {reader}"}
    with client(service) as http:
        mine = http.get(f"/{TENANT_TABLE}?limit={PAGE}", headers=auth)
        expect(mine, 200, f"GET /{TENANT_TABLE}?limit={PAGE} with the reader's JWT")
        everyone = http.get(f"/{TENANT_TABLE}?limit={PAGE}")
        expect(everyone, 200, f"GET /{TENANT_TABLE}?limit={PAGE} as the developer")
        as_admin = http.get(f"/{TENANT_TABLE}?limit={PAGE}", headers={"authorization": f"Bearer {admin}"})
        expect(as_admin, 200, f"GET /{TENANT_TABLE}?limit={PAGE} with an administrator's JWT")
        mine_ids = [r["id"] for r in mine.json()[TENANT_TABLE]]
        all_ids = [r["id"] for r in everyone.json()[TENANT_TABLE]]
        expected = [i for i in range(1, 10 * PAGE) if reader_sees(i)][:PAGE]
        if mine_ids != expected:
            raise RuntimeError(f"the reader's page holds ids {mine_ids[:12]}..., expected {expected[:12]}...")
        if all_ids != list(range(1, PAGE + 1)) or [r["id"] for r in as_admin.json()[TENANT_TABLE]] != all_ids:
            raise RuntimeError(f"the developer's (or an admin's) page holds ids {all_ids[:12]}..., not 1..{PAGE}")
        hidden, visible = HIDDEN_EVERY * 3, HIDDEN_EVERY * 3 + 1
        expect(http.get(f"/{TENANT_TABLE}/{hidden}", headers=auth), 404, f"a hidden row ({hidden}) for the reader")
        expect(http.get(f"/{TENANT_TABLE}/{hidden}"), 200, f"a hidden row ({hidden}) for the developer")
        expect(http.get(f"/{TENANT_TABLE}/{visible}", headers=auth), 200, f"a visible row ({visible}) for the reader")
        expect(http.get(f"/{TENANT_TABLE}/{visible}", headers={"authorization": "Bearer x.y.z"}), 401,
               "a forged JWT")  # credentials that are sent are checked
        return {"list_bytes_reader": len(mine.content), "list_bytes_developer": len(everyone.content)}


def measure_enforcement(service: Server, args: argparse.Namespace, profile: bool) -> dict[str, Any]:
    """The cost of enforcement on a TENANT serving, on the service alone: a reader's JWT (verified, then its
    row filter in the statement) against no token (the developer: an administrator, no verification, no row
    filter), for the first page of 100 and for keyed reads of rows the reader may see. For information, an
    administrator's JWT (verification without a row filter) against no token on the page."""
    reader, admin = bearer(READER_CLAIMS), bearer(ADMIN_CLAIMS)
    sizes = check_enforcement(service, reader, admin)
    as_reader = (("Authorization", f"Bearer {reader}"),)
    as_admin = (("Authorization", f"Bearer {admin}"),)
    page = f"/{TENANT_TABLE}?limit={PAGE}"
    list_label = f"GET /{TENANT_TABLE}?limit={PAGE}"
    list_plain = Endpoint("tenant_list_developer", f"{list_label} (no token)", page)
    list_reader = Endpoint("tenant_list_reader", f"{list_label} (reader JWT)", page, headers=as_reader)
    list_admin = Endpoint("tenant_list_admin", f"{list_label} (admin JWT)", page, headers=as_admin)
    # random keys the reader can see: random_pk.lua moves every multiple of HIDDEN_EVERY one key down
    keys = (("BENCH_PREFIX", f"/{TENANT_TABLE}/"), ("BENCH_MAX_ID", str(args.tenant_rows)),
            ("BENCH_SKIP_EVERY", str(HIDDEN_EVERY)))  # fmt: skip
    pk_label = f"GET /{TENANT_TABLE}/{{pk}}"
    pk_plain = Endpoint("tenant_pk_developer", f"{pk_label} (no token)", f"/{TENANT_TABLE}/1", keys)
    pk_reader = Endpoint("tenant_pk_reader", f"{pk_label} (reader JWT)", f"/{TENANT_TABLE}/1", keys, as_reader)
    say(f"  -- enforcement: {TENANT_TABLE!r} ({args.tenant_rows:,} rows) served by {SERVING!r} (TENANT) of data "
        f"product {PRODUCT!r}, granted to {READER_TEAM}; the reader (orgs {READER_CLAIMS['orgs']}, tenants "
        f"t1..t8, tenant group g1) sees {100 - 100 // HIDDEN_EVERY}% of the rows")
    say(f"  -- {list_label}: reader's HS256 JWT (verified, row filter) vs no token (developer, no filter)")
    results: dict[str, Any] = {}
    results["enforce_list"] = compare_pair(("reader", service, list_reader), ("developer", service, list_plain),
                                           args) | sizes
    say(f"  -- {pk_label}, random keys the reader sees: reader's JWT vs no token")
    results["enforce_pk"] = compare_pair(("reader", service, pk_reader), ("developer", service, pk_plain), args)
    say(f"  -- {list_label}, for information: an administrator's JWT (verified, no row filter) vs no token")
    results["enforce_list_admin"] = compare_pair(("admin", service, list_admin), ("developer", service, list_plain),
                                                 args)
    chosen = args.profile_on.split(",")
    if profile and "enforcement" in chosen:
        results["enforce_list"]["profile"] = profile_pair(("reader", service, list_reader),
                                                          ("developer", service, list_plain), args)
    if profile and "enforcement_pk" in chosen:
        results["enforce_pk"]["profile"] = profile_pair(("reader", service, pk_reader),
                                                        ("developer", service, pk_plain), args)
    return results


def measure_embed(service: Server, args: argparse.Namespace, profile: bool) -> dict[str, Any]:
    """GET /parents?limit=100&select=*,children(*) against the plain page, on the service alone."""
    plain = Endpoint("parents_100", f"GET /{PARENTS_TABLE}?limit=100", f"/{PARENTS_TABLE}?limit={PAGE}")
    embed = Endpoint("parents_100_embed", f"GET /{PARENTS_TABLE}?limit=100&select=*,{CHILDREN_TABLE}(*)",
                     f"/{PARENTS_TABLE}?limit={PAGE}&select=*,{CHILDREN_TABLE}(*)")
    with client(service) as http:
        response = http.get(embed.path)
        expect(response, 200, embed.label)
        parents = response.json()[PARENTS_TABLE]
        children = sum(len(p[CHILDREN_TABLE]) for p in parents)
        size = len(response.content)
        plain_size = len(http.get(plain.path).content)
    say(f"  -- embedding: {embed.label} ({len(parents)} parents, {children} children, {size / 1024:.0f} KiB) "
        f"vs {plain.label} ({plain_size / 1024:.0f} KiB), service alone")
    measured = compare_pair(("embed", service, embed), ("plain", service, plain), args)
    if profile and "embed" in args.profile_on.split(","):
        measured["profile"] = profile_pair(("embed", service, embed), ("plain", service, plain), args)
    return measured | {"parents": len(parents), "children": children, "embed_bytes": size, "plain_bytes": plain_size}


def measure_keyset(service: Server, args: argparse.Namespace) -> dict[str, Any]:
    """The last page of --keyset-rows rows through its `next` cursor against page 1, on the service alone;
    the same page by offset for information."""
    last_offset = args.keyset_rows - PAGE
    with client(service) as http:
        response = http.get(f"/{PAGES_TABLE}?offset={last_offset - PAGE}&limit={PAGE}")
        expect(response, 200, "the page before the last (by offset)")
        following = next(link["href"] for link in response.json()["links"] if link["rel"] == "next")
        check = http.get(following)
        expect(check, 200, "the last page (by cursor)")
        ids = [row["id"] for row in check.json()[PAGES_TABLE]]
        if ids != list(range(last_offset + 1, args.keyset_rows + 1)):
            raise RuntimeError(f"the cursor page holds ids {ids[:3]}..{ids[-3:]}, not the last page")
    pages = args.keyset_rows // PAGE
    first = Endpoint("page_1", f"GET /{PAGES_TABLE}?limit=100 (page 1)", f"/{PAGES_TABLE}?limit={PAGE}")
    last = Endpoint("page_last", f"page {pages:,} by cursor", following)
    say(f"  -- keyset: {PAGES_TABLE!r} of {args.keyset_rows:,} rows, page {pages:,} through its next cursor "
        f"({following}) vs page 1, service alone")
    measured = compare_pair(("page_1", service, first), ("page_last", service, last), args)
    by_offset = Endpoint("page_offset", f"page {pages:,} by offset",
                         f"/{PAGES_TABLE}?offset={last_offset}&limit={PAGE}")
    wait_until_idle(args.idle_wait)
    offset_run = run_wrk(service.url + by_offset.path, args, args.duration, None, service)
    say(f"  for information, page {pages:,} by offset ({by_offset.path}): {offset_run.rps:.0f} req/s "
        f"(p50 {offset_run.p50_ms:.1f} ms)")
    return measured | {"pages": pages, "cursor_path": following, "slowdown": measured["ratio"],
                       "offset_rps": offset_run.rps, "offset_p50_ms": offset_run.p50_ms}  # fmt: skip


def measure_bulk(service: Server, baseline: Server, url: str, args: argparse.Namespace,
                 profile: bool) -> dict[str, Any]:
    """POST /bulk with a JSON array of --bulk-rows rows, alternating service and baseline; rows/s."""
    body = bulk_body(args.bulk_rows)
    say(f"  -- bulk insert: POST /{BULK_TABLE} with {args.bulk_rows:,} rows ({len(body) / 2**20:.1f} MiB of JSON), "
        f"{args.bulk_rounds} round(s) per server, the table emptied before each")
    runs: dict[str, list[float]] = {"service": [], "baseline": []}
    pair = {"service": service, "baseline": baseline}
    for index in range(args.bulk_rounds):
        order = ("service", "baseline") if index % 2 == 0 else ("baseline", "service")
        for name in order:
            empty_table(url, BULK_TABLE)
            wait_until_idle(args.idle_wait)
            with client(pair[name]) as http:
                expect(http.get("/health"), 200, "health")  # the connection is open before timing
                response, seconds = post_json(http, f"/{BULK_TABLE}", body)
            expect(response, 201, f"POST /{BULK_TABLE} ({name})")
            if len(response.json()["ids"]) != args.bulk_rows:
                raise RuntimeError(f"{name}: POST /{BULK_TABLE} answered {len(response.json()['ids'])} ids")
            runs[name].append(seconds)
        say(f"  round {index + 1}: service {runs['service'][-1]:.2f} s = {args.bulk_rows / runs['service'][-1]:,.0f} "
            f"rows/s   baseline {runs['baseline'][-1]:.2f} s = {args.bulk_rows / runs['baseline'][-1]:,.0f} rows/s")
    median = {name: statistics.median(times) for name, times in runs.items()}
    rate = {name: args.bulk_rows / seconds for name, seconds in median.items()}
    profile = profile_bulk(service, url, body, args) if profile and "bulk" in args.profile_on.split(",") else None
    say(f"  median: service {rate['service']:,.0f} rows/s, baseline {rate['baseline']:,.0f} rows/s, ratio "
        f"{rate['service'] / rate['baseline']:.3f}")
    return {"rows": args.bulk_rows, "body_bytes": len(body), "seconds": runs, "median_s": median,
            "service_rows_s": rate["service"], "baseline_rows_s": rate["baseline"],
            "ratio": rate["service"] / rate["baseline"], "profile": profile}


def profile_bulk(service: Server, url: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    """py-spy on the service's workers during one bulk POST: every thread that is not idle (so Python work
    on the event loop and in the thread pool; waits on the database count as idle)."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy not installed"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / "pyspy-bulk-service.txt"
    empty_table(url, BULK_TABLE)
    wait_until_idle(args.idle_wait)
    command = [spy, "record", "--pid", str(service.pid), "--subprocesses", "--nonblocking", "--function",
               "--rate", str(PROFILE_RATE_HZ), "--format", "raw", "--output", str(raw)]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    with client(service) as http:
        expect(http.get("/health"), 200, "health")
        response, seconds = post_json(http, f"/{BULK_TABLE}", body)
    recorder.send_signal(signal.SIGINT)
    _, err = recorder.communicate(timeout=60)
    expect(response, 201, f"POST /{BULK_TABLE} (profiled)")
    if not raw.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    summary = summarise_collapsed(raw)
    summary |= {"post_to_201_s_while_profiled": seconds,
                "busy_thread_s": round(summary["samples"] / PROFILE_RATE_HZ, 2)}  # fmt: skip
    print_profile(f"service during POST /{BULK_TABLE} of {args.bulk_rows:,} rows ({seconds:.2f} s while sampled, "
                  f"{summary['busy_thread_s']:.2f} s of non-idle thread time)", summary, rows=20)
    return summary


# -- profiling ------------------------------------------------------------------------------------------


def py_spy() -> str | None:
    candidate = Path(sys.executable).parent / "py-spy"
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


STDLIB = "python stdlib / interpreter"


def component(frame: str) -> str:
    """Which package a py-spy frame `function (path:line)` belongs to; py-spy shortens the paths."""
    found = re.search(r"\((.*?)(?::\d+)?\)$", frame)
    path = found.group(1) if found else frame
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif "/generator/" in path:
        path = "generator/" + path.split("/generator/", 1)[1]
    top = path.lstrip("/").split("/", 1)[0].removesuffix(".py")
    if top == "generator":
        return "generator (ours)"
    if top in sys.stdlib_module_names or top.startswith(("<", "_")) or "python3." in path:
        return STDLIB
    return top


def summarise_collapsed(path: Path, top: int = 20) -> dict[str, Any]:
    """From py-spy's raw (collapsed) output: self and inclusive shares per frame, and per package.

    `by_package` charges each sample to the innermost frame outside the standard library, so a deepcopy
    or a lock wait counts for the library that called it."""
    self_counts: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f.endswith(")") and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        self_counts[frames[-1]] += count
        owners = [component(f) for f in frames]
        packages[next((o for o in reversed(owners) if o != STDLIB), STDLIB)] += count
        for frame, owner in set(zip(frames, owners, strict=True)):
            if owner != STDLIB:
                inclusive[frame] += count
    roots = {frame for frame, n in inclusive.items() if n >= 0.9 * total}  # process and thread entry points

    def share(counter: Counter[str], skip: set[str] | None = None) -> list[dict[str, Any]]:
        entries = [(frame, n) for frame, n in counter.most_common() if frame not in (skip or set())][:top]
        return [{"frame": frame, "percent": round(100 * n / max(1, total), 1)} for frame, n in entries]

    return {"samples": total, "self": share(self_counts), "inclusive": share(inclusive, roots),
            "by_package": share(packages), "package_samples": dict(packages), "raw": str(path)}  # fmt: skip


def print_profile(title: str, summary: dict[str, Any], rows: int = 12, with_packages: bool = True) -> None:
    say(f"\n  {title}: {summary['samples']} samples ({summary['raw']})")
    for key, heading in (("by_package", "time by package (stdlib time charged to its caller)"),
                         ("self", "top self frames"),
                         ("inclusive", "top inclusive frames outside the stdlib")):  # fmt: skip
        if key == "by_package" and not with_packages:
            continue
        say(f"    {heading}:")
        for entry in summary[key][:rows]:
            say(f"      {entry['percent']:5.1f}%  {entry['frame']}")


PROFILE_RATE_HZ = 200


def record_under_load(server: Server, endpoint: Endpoint, args: argparse.Namespace, raw: Path) -> LoadResult:
    """py-spy (GIL holders only, all workers) while wrk loads `server`; py-spy stops when wrk has finished."""
    spy = py_spy()
    assert spy is not None
    command = [spy, "record", "--pid", str(server.pid), "--subprocesses", "--nonblocking", "--function", "--gil",
               "--rate", str(PROFILE_RATE_HZ), "--format", "raw", "--output", str(raw)]  # fmt: skip
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)  # let py-spy attach; an idle worker holds no GIL, so these seconds add no samples
    try:
        load = run_wrk(server.url + endpoint.path, args, args.profile_duration, endpoint.script_env, server,
                       endpoint.headers)
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        _, err = recorder.communicate(timeout=60)
    if not raw.exists():
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-500:]}")
    return load


def profile_under_load(service: Server, baseline: Server, endpoint: Endpoint,
                       args: argparse.Namespace) -> dict[str, Any]:
    """Profile service and baseline under the same load; compare Python time per request by package."""
    return profile_pair(("service", service, endpoint), ("baseline", baseline, endpoint), args)


def profile_pair(first: tuple[str, Server, Endpoint], second: tuple[str, Server, Endpoint],
                 args: argparse.Namespace) -> dict[str, Any]:
    """Profile two loads (service and baseline, or two routes of the service); Python time per request by
    package side by side, `extra` = first - second."""
    if py_spy() is None:
        say("  (py-spy not found: .venv/bin/pip install py-spy)")
        return {"error": "py-spy not installed"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    label = " vs ".join(dict.fromkeys(f"{n}: {e.label}" for n, _, e in (first, second)))
    say(f"  -- py-spy (GIL holders only, {PROFILE_RATE_HZ} Hz) on the workers under {label} load, "
        f"{args.profile_duration:g} s each")
    profiles: dict[str, dict[str, Any]] = {}
    for name, server, endpoint in (first, second):
        wait_until_idle(args.idle_wait)
        raw = RESULTS_DIR / f"pyspy-{first[2].key}-{name}.txt"
        load = record_under_load(server, endpoint, args, raw)
        summary = summarise_collapsed(raw)
        scale = 1000 / PROFILE_RATE_HZ / max(1, load.requests)  # samples -> ms of GIL time per request
        summary |= {"rps_while_profiled": load.rps, "requests": load.requests,
                    "gil_ms_per_request": round(summary["samples"] * scale, 3),
                    "gil_ms_per_request_by_package": {k: round(n * scale, 3)
                                                      for k, n in summary["package_samples"].items()}}  # fmt: skip
        profiles[name] = summary
    a_name, b_name = first[0], second[0]
    s, b = profiles[a_name], profiles[b_name]
    say(f"  Python (GIL) time per request: {a_name} {s['gil_ms_per_request']:.2f} ms at "
        f"{s['rps_while_profiled']:.0f} req/s, {b_name} {b['gil_ms_per_request']:.2f} ms at "
        f"{b['rps_while_profiled']:.0f} req/s")
    packages = sorted(set(s["gil_ms_per_request_by_package"]) | set(b["gil_ms_per_request_by_package"]),
                      key=lambda k: -s["gil_ms_per_request_by_package"].get(k, 0))
    say(f"    {'package (stdlib time charged to its caller)':46} {a_name:>9} {b_name:>9} {'extra':>9}")
    for package in packages:
        sv = s["gil_ms_per_request_by_package"].get(package, 0.0)
        bv = b["gil_ms_per_request_by_package"].get(package, 0.0)
        if max(sv, bv) >= 0.005:
            say(f"    {package:46} {sv:8.3f}ms {bv:8.3f}ms {sv - bv:+8.3f}ms")
    print_profile(f"{a_name} under {first[2].label}", s, with_packages=False)
    return profiles


def profile_generation(db: str, new_database: Callable[[str], str], args: argparse.Namespace,
                       tmp: Path) -> dict[str, Any]:
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy not installed"}
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    raw = RESULTS_DIR / f"pyspy-generation-{db}.txt"
    server = service_server("service", new_database("gen_profile"), tmp / f"gen-{db}-profile", workers=None)
    body = json.dumps(generation_payload(args.tables, args.fields)).encode()
    with running(server), client(server) as http:
        command = [spy, "record", "--pid", str(server.pid), "--function", "--rate", "200", "--format", "raw",
                   "--output", str(raw)]
        recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        response, seconds = post_json(http, "/generator", body)
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
        _, err = recorder.communicate(timeout=60)
        expect(response, 201, "POST /generator (profiled)")
    if not raw.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}
    summary = summarise_collapsed(raw)
    summary["post_to_201_s_while_profiled"] = seconds
    print_profile(f"profile of POST /generator on {db} ({seconds:.2f} s while sampled)", summary)
    return summary


# -- summary --------------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def summary_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for db, gen in results.get("generation", {}).items():
        median = gen["median"]
        rows.append({"metric": f"generation {db}: POST /generator -> 201",
                     "service": f"{median['post_to_201_s']:.3f} s", "baseline": "", "ratio": "",
                     "target": f"< {GENERATION_TARGET_S:g} s",
                     "result": verdict(median["post_to_201_s"] < GENERATION_TARGET_S),
                     "value": median["post_to_201_s"]})
        for key, label in (("first_list_s", "first GET /t0 after swap"), ("first_create_s", "first POST /t0"),
                           ("first_read_s", "first GET /t0/{id}")):
            rows.append({"metric": f"generation {db}: {label}", "service": ms(median[key]), "baseline": "",
                         "ratio": "", "target": "", "result": "info", "value": median[key]})  # fmt: skip
        rows.append({"metric": f"generation {db}: restart to healthy", "baseline": "", "ratio": "", "target": "",
                     "service": f"{median['restart_to_healthy_s']:.2f} s (empty: {median['server_start_s']:.2f} s)",
                     "result": "info", "value": median["restart_to_healthy_s"]})  # fmt: skip
    for db, load in results.get("throughput", {}).items():
        for key in (*ENDPOINT_KEYS, "filter_eq"):
            if key not in load:
                continue
            measured, target = load[key], TARGETS[key]
            ok = measured["ratio"] >= target and measured["errors"] == 0 and load["responses_identical"]
            rows.append({
                "metric": f"{db}: {measured['endpoint']} req/s",
                "service": f"{measured['service_rps']:.0f}",
                "baseline": f"{measured['baseline_rps']:.0f}",
                "ratio": f"{measured['ratio']:.3f}",
                "target": f">= {target:g}" if db == "postgresql" else f"(>= {target:g})",
                "result": verdict(ok) if db == "postgresql" else ("info, " + verdict(ok)),
                "value": measured["ratio"],
            })
        if "embed" in load:
            measured = load["embed"]
            rows.append({"metric": f"{db}: embed {measured['children']} children in 100 parents / plain page req/s",
                         "service": f"{measured['embed_rps']:.0f} / {measured['plain_rps']:.0f}", "baseline": "",
                         "ratio": f"{measured['ratio']:.3f}", "target": "", "result": "info",
                         "value": measured["ratio"]})  # fmt: skip
        if "keyset" in load:
            measured = load["keyset"]
            ok = measured["slowdown"] <= KEYSET_TARGET and measured["errors"] == 0
            rows.append({"metric": f"{db}: keyset page {measured['pages']:,} vs page 1, time ratio (req/s page 1 / "
                                   "last)",
                         "service": f"{measured['page_1_rps']:.0f} / {measured['page_last_rps']:.0f}",
                         "baseline": "", "ratio": f"{measured['slowdown']:.3f}", "target": f"<= {KEYSET_TARGET:g}",
                         "result": verdict(ok), "value": measured["slowdown"]})  # fmt: skip
            rows.append({"metric": f"{db}: the same page by offset req/s (information)",
                         "service": f"{measured['offset_rps']:.0f}", "baseline": "", "ratio": "", "target": "",
                         "result": "info", "value": measured["offset_rps"]})  # fmt: skip
        for key, label, target in (
            ("enforce_list", f"GET /{TENANT_TABLE}?limit=100 (TENANT serving), reader JWT / no token",
             ENFORCEMENT_TARGET),
            ("enforce_pk", f"GET /{TENANT_TABLE}/{{pk}} (TENANT serving), reader JWT / no token", None),
            ("enforce_list_admin", f"GET /{TENANT_TABLE}?limit=100, admin JWT (no row filter) / no token", None),
        ):
            if key not in load:
                continue
            measured = load[key]
            first, second = ("admin", "developer") if key == "enforce_list_admin" else ("reader", "developer")
            ok = target is not None and measured["ratio"] >= target and measured["errors"] == 0
            rows.append({"metric": f"{db}: {label}, req/s",
                         "service": f"{measured[f'{first}_rps']:.0f} / {measured[f'{second}_rps']:.0f}",
                         "baseline": "", "ratio": f"{measured['ratio']:.3f}",
                         "target": "" if target is None else f">= {target:g}",
                         "result": "info" if target is None else (verdict(ok) if db == "postgresql" else
                                                                  "info, " + verdict(ok)),
                         "value": measured["ratio"]})
        if "bulk" in load:
            measured = load["bulk"]
            ok = measured["service_rows_s"] >= BULK_TARGET_ROWS_S
            rows.append({"metric": f"{db}: bulk POST of {measured['rows']:,} rows, rows/s",
                         "service": f"{measured['service_rows_s']:,.0f}",
                         "baseline": f"{measured['baseline_rows_s']:,.0f}", "ratio": f"{measured['ratio']:.3f}",
                         "target": f">= {BULK_TARGET_ROWS_S:,}" if db == "postgresql" else "",
                         "result": verdict(ok) if db == "postgresql" else "info",
                         "value": measured["service_rows_s"]})  # fmt: skip
    return rows


def caveats(results: dict[str, Any]) -> list[str]:
    notes = []
    for db, load in results.get("throughput", {}).items():
        if not load.get("responses_identical", True):
            notes.append(f"{db}: the service and the baseline returned different bodies (see the log above)")
        for key in (*ENDPOINT_KEYS, "filter_eq", "embed", "keyset", "enforce_list", "enforce_pk", "enforce_list_admin"):
            if key not in load:
                continue
            measured = load[key]
            label = measured["endpoint"]
            if measured["disturbed_runs"]:
                notes.append(f"{db} {label}: {measured['disturbed_runs']} run(s) started while other "
                             "processes kept the CPUs busy")
            if measured["unbalanced_runs"]:
                notes.append(f"{db} {label}: {measured['unbalanced_runs']} run(s) had their connections on one worker")
            if measured["errors"]:
                notes.append(f"{db} {label}: {measured['errors']} non-2xx responses or socket errors")
    for db, gen in results.get("generation", {}).items():
        disturbed = sum(r.get("busy_before", 0) > BUSY_WARNING for r in gen["rounds"])
        if disturbed:
            notes.append(f"generation {db}: {disturbed} round(s) started while other processes kept the CPUs busy")
    return notes


def print_summary(rows: list[dict[str, Any]]) -> None:
    headers = ("metric", "service", "baseline", "ratio", "target", "result")
    widths = {h: max(len(h), *(len(str(r[h])) for r in rows)) for h in headers}
    line = "  ".join(h.ljust(widths[h]) for h in headers)
    say("\n== Summary\n" + line + "\n" + "-" * len(line))
    for row in rows:
        say("  ".join(str(row[h]).ljust(widths[h]) for h in headers))


def git(*arguments: str) -> str:
    done = subprocess.run(["git", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def export_ref(ref: str, destination: Path) -> Path:
    """`git archive` of `ref` into `destination`: benchmark a commit, whatever the work tree holds."""
    destination.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "--format=tar", ref], cwd=REPO_ROOT, capture_output=True, check=False)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref} failed: {archive.stderr.decode(errors='replace')}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return destination


def environment(args: argparse.Namespace, postgres: PostgresServer | None) -> dict[str, Any]:
    versions = {}
    for package in ("connexion", "starlette", "uvicorn", "sqlalchemy", "psycopg", "orjson", "uvloop", "httptools"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    info: dict[str, Any] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "load_generator": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "wrk",
        "service_source": f"git {args.ref} (exported)" if args.ref else "work tree" + (
            " with uncommitted changes" if git("status", "--porcelain", "--", "generator", "schemas", "wsgi.py")
            else ""),
        "git_commit": git("rev-parse", "--short", args.ref or "HEAD"),
        "git_head": git("rev-parse", "--short", "HEAD"),
    }
    if postgres is not None:
        libpq = postgres.url.set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(libpq) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else None
    return info


# -- main -----------------------------------------------------------------------------------------------


WRK_MISSING = "wrk is not installed: `apt-get install -y wrk` (see bench/README.md)"


def wrk_missing() -> bool:
    """True, having said so, when wrk is not installed (every load measurement needs it)."""
    if shutil.which("wrk") is not None:
        return False
    say(WRK_MISSING)
    return True


def add_run_length_options(parser: argparse.ArgumentParser) -> None:
    """--duration/--warmup/--rounds for the standalone benches; `settle_run_length` fills the defaults."""
    parser.add_argument("--duration", type=float, default=None, help="seconds per run [10; --quick 5]")
    parser.add_argument("--warmup", type=float, default=None, help="[5; --quick 2]")
    parser.add_argument("--rounds", type=int, default=None, help="measured runs per server [5; --quick 3]")


def settle_run_length(args: argparse.Namespace) -> None:
    args.duration = args.duration or (5.0 if args.quick else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (3 if args.quick else 5)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    measures_load = any(s != "generation" for s in args.sections)
    if measures_load and wrk_missing():
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="drg-bench-"))
    postgres: PostgresServer | None = None
    started = time.perf_counter()
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                               "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    try:
        if "postgresql" in args.databases:
            say("Starting a throwaway PostgreSQL server ...")
            postgres = start_postgres()
        results["environment"] = environment(args, postgres)
        if args.ref:
            SERVICE_ROOT[0] = export_ref(args.ref, tmp / "service")
        env = results["environment"]
        say(f"Machine: {env['cpus']} CPUs, Python {env['python']}, PostgreSQL {env.get('postgresql', '-')}; "
            f"service: {env['service_source']} at {env['git_commit']}; temporary files in {tmp}")
        counter = iter(range(1_000_000))

        def new_database(db: str) -> Callable[[str], str]:
            def make(name: str) -> str:
                unique = f"bench_{name}_{next(counter)}"
                if db == "sqlite":
                    return f"sqlite:///{tmp / (unique + '.sqlite3')}"
                assert postgres is not None
                return postgres.create_database(unique)

            return make

        if "generation" in args.sections:
            results["generation"] = {db: measure_generation(db, new_database(db), args, tmp) for db in args.databases}
        if measures_load:
            results["throughput"] = {}
            profiled = "postgresql" if "postgresql" in args.databases else args.databases[0]
            for db in args.databases:
                results["throughput"][db] = measure_throughput(db, new_database(db), args, tmp,
                                                               profile=args.profile and db == profiled)
        if args.profile and "generation" in args.sections:
            say("\n== Profiles of one generation per database (py-spy, all threads)")
            results["profile_generation"] = {db: profile_generation(db, new_database(db), args, tmp)
                                             for db in args.databases}
    finally:
        if postgres is not None:
            postgres.stop()
        if args.keep_temp:
            say(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = summary_rows(results)
    results["summary"] = rows
    results["elapsed_s"] = round(time.perf_counter() - started, 1)
    print_summary(rows)
    results["caveats"] = caveats(results)
    for note in results["caveats"]:
        say(f"  caveat: {note}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    say(f"\nWrote {args.output} ({results['elapsed_s']:.0f} s in all)")
    missed = [r["metric"] for r in rows if r["result"] == "FAIL"]
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())

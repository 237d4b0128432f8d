"""Layer 4: the generation lifecycle. Parse → build the app (in memory) and run the DDL (one transaction)
side by side → commit once both succeeded → swap → save. A failure at any step leaves the previous API
serving and the database as it was.

The build is CPU work in Python and the DDL mostly waits on the database, so they overlap: the build runs
in a worker thread while the DDL transaction plans here (reflection, data checks); the transaction then waits
for the build before it changes any table (no table lock is held while it waits), runs the DDL and commits,
only after the build has succeeded.

Generations race by optimistic concurrency: a generation notes the newest recorded one when it starts, and
if another commits first (on this process or another replica), or is being applied when it gets to its
transaction, it changes nothing and answers 409; the first to commit wins. Posting the same payload as the
winner is not a conflict: the loser adopts it and answers as for a payload already applied.

Every generation is a row of `drg_generations`. Other processes on the same database (uvicorn workers,
replicas) adopt a newer row (`follow` → `refresh`) and swap it in without touching the database: the
generation feed (generator/feed.py) wakes them at once through PostgreSQL LISTEN/NOTIFY, and every
`poll_seconds` regardless (the only way on SQLite). How soon they serve it is that wake-up plus the time to
parse the payload and build its app, which grows with the number of operations (see README, "Regeneration
and restart"). A process that adopts a generation calls `drg_generation_applied` too, with no created
tables."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pluggy
from sqlalchemy import Connection, Engine, MetaData

from generator.api.build import ServedApi, build_api_app
from generator.codec import dumps_text, loads
from generator.config import Settings
from generator.crypto.build import Ciphers
from generator.errors import InvalidPayload, StartupError, conflict
from generator.feed import GenerationFeed
from generator.models import blind_keys, ddl, evolution, rules
from generator.models.ddl import Change, GenerationRaced, SchemaConflict
from generator.models.replicas import replicas_of
from generator.models.tables import build_metadata
from generator.payload import Generation, parse_payload
from generator.payload.parse import warm_up
from generator.storage import PayloadStore

log = logging.getLogger(__name__)
BOOT_READS = 3  # start-up reads the newest generation again when a newer one commits while it checks one
EMPTY = Generation(resources=(), many_to_many=(), operations=(), title="Data Resource API (no generation yet)",
                   description="POST a generation payload to /generator.", version="0", digest="")


@dataclass(frozen=True)
class Outcome:
    """What a `POST /generator` did, for its response body."""

    changed: bool
    generation: Generation
    created_tables: list[str] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)  # what was applied: DDL and routes
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)


class Runtime:
    def __init__(self, settings: Settings, engine: Engine, store: PayloadStore, hooks: pluggy.PluginManager) -> None:
        self.settings, self.engine, self.store, self.hooks = settings, engine, store, hooks
        self._lock = threading.Lock()
        self._builder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="drg-build")
        self.current: ServedApi = self._build(EMPTY, build_metadata(EMPTY))
        self.seen_id = 0  # the newest drg_generations row this process has applied or adopted
        # the drg_generations row `current` serves, and its tables: evolution skips reflecting the tables a
        # new payload declares exactly as it (`evolution.unchanged`)
        self.served: tuple[int, MetaData] = (0, build_metadata(EMPTY))
        # False: poll only, also on PostgreSQL (where LISTEN cannot work, as behind PgBouncer in transaction
        # pooling). Read by `follow()`.
        self.listen = settings.generation_listen
        self.feed: GenerationFeed | None = None

    def _build(self, generation: Generation, metadata: MetaData, ciphers: Ciphers | None = None) -> ServedApi:
        """The served app; protected fields get their ciphers (keys read from the environment; a key that
        is missing or unusable is an `InvalidPayload` naming the field and the variable)."""
        if ciphers is None:  # boot and refresh: with the stored blind-index keys of searchable KMS fields
            ciphers = blind_keys.ciphers_for(self.engine, generation)
        return build_api_app(generation, metadata, self.engine, default_limit=self.settings.default_page_size,
                             max_limit=self.settings.max_page_size, hooks=self.hooks,
                             auth_required=self.settings.production, ciphers=ciphers)

    def boot(self) -> None:
        """Rebuild the last generation without touching the database; refuse to start on a mismatch.

        The newest generation recorded in the database wins over the saved file: the file is written after
        the commit, so it can only lag behind (a crash between the two, or a follower that saved late)."""
        self.store.check_writable()
        ddl.ensure_platform_tables(self.engine, lock_timeout_ms=self.settings.lock_timeout_ms)
        warm_up()
        for attempt in range(1, BOOT_READS + 1):
            recorded = ddl.latest(self.engine)
            if recorded is not None:
                payload, source = loads(recorded.payload), f"drg_generations #{recorded.id}"
            else:
                payload, source = self.store.load(), str(getattr(self.store, "path", "the payload store"))
            if payload is None:
                log.info("No saved generation: serving an empty API until a payload is posted to /generator")
                return
            try:
                generation = parse_payload(payload)
                metadata = build_metadata(generation)
                ddl.verify(self.engine, metadata)
                break
            except InvalidPayload as exc:
                raise StartupError(f"The saved payload ({source}) is invalid: {exc}. Fix or delete it.") from None
            except SchemaConflict as exc:
                # another process may have committed a newer generation (dropping a column, say) between the
                # read and the check: the tables then match that one, so read again
                if recorded is not None and attempt < BOOT_READS and ddl.latest_id(self.engine) > recorded.id:
                    log.info("Generation #%d was superseded while this process checked it; reading again",
                             recorded.id)
                    continue
                raise StartupError(
                    f"The database does not match the saved payload ({source}): {exc}. Restore the database, "
                    "or delete the saved payload to start empty."
                ) from None
        self.current = self._build(generation, metadata)
        if recorded is not None:
            self.seen_id, self.served = recorded.id, (recorded.id, metadata)
            self._save(payload, recorded.id)  # bring a lagging file up to date
        log.info("Rebuilt generation %s from %s: %d tables, %d operations", generation.digest[:12], source,
                 len(generation.resources), len(generation.operations))

    def _save(self, payload: dict[str, Any], generation_id: int) -> str | None:
        """Save the payload; a failure is reported, not raised: the generation is committed and served."""
        try:
            self.store.save(payload, generation_id)
        except OSError as exc:
            log.error("Generation #%d is applied but its payload could not be saved: %s", generation_id,
                      exc.strerror or exc)
            return f"the generation is applied and served, but its payload could not be saved ({exc.strerror})"
        return None

    def follow(self) -> None:
        """Start adopting generations other processes record: the generation feed calls `refresh` in a
        thread of its own (building an app is CPU work that must not run on the event loop or take a request
        thread), on each PostgreSQL notification and every `poll_seconds`. `poll_seconds <= 0`: never."""
        if self.settings.poll_seconds <= 0 or self.feed is not None:
            return
        self.feed = GenerationFeed(self.engine, self.settings.poll_seconds, self.refresh, listen=self.listen)
        self.feed.start()

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
        if (replicas := replicas_of(self.engine)) is not None:
            replicas.close()  # a replica check under way holds a primary connection too
        self.engine.dispose()

    def refresh(self) -> bool:
        """Adopt a generation another process recorded since; True if one was swapped in.

        The database is only read: the process that recorded it has already applied its DDL. A generation
        that does not match the database is logged and skipped, and this process keeps serving."""
        if ddl.latest_id(self.engine) <= self.seen_id or not self._lock.acquire(blocking=False):
            return False
        try:
            recorded = ddl.latest(self.engine)
            if recorded is None or recorded.id <= self.seen_id:
                return False
            if recorded.digest == self.current.generation.digest:
                # the payload served, recorded again (after others, on top of them): its tables are this
                # payload's once more (touch_database is part of the digest), so it is now the row served
                served_metadata = self.served[1] if self.served[0] else build_metadata(self.current.generation)
                self.seen_id, self.served = recorded.id, (recorded.id, served_metadata)
                return False
            payload = loads(recorded.payload)
            generation = parse_payload(payload)
            metadata = build_metadata(generation)
            ddl.verify(self.engine, metadata)
            self.current = self._build(generation, metadata)
            self.seen_id = recorded.id  # only now: a passing database error leaves it to the next round
            self.served = (recorded.id, metadata)
            self._save(payload, recorded.id)
        except (InvalidPayload, SchemaConflict) as exc:
            self.seen_id = recorded.id  # will not change by waiting: skip it, keep serving
            log.error("Generation %d recorded by another process cannot be served here: %s", recorded.id, exc)
            return False
        finally:
            self._lock.release()
        log.info("Adopted generation %s (#%d) recorded by another process", generation.digest[:12], recorded.id)
        self.hooks.hook.drg_generation_applied(generation=generation, created_tables=[])
        return True

    def plan(self, payload: dict[str, Any]) -> tuple[Generation, list[Change]]:
        """What applying `payload` would change (tables and routes), without changing anything; raises
        `InvalidPayload`, or `SchemaConflict` for a `touch_database: false` payload the database does not
        match. The changes may include refused ones: the caller decides (see `evolution.refused`)."""
        generation = parse_payload(payload)
        metadata = build_metadata(generation)
        routes = evolution.route_changes(self.current.generation, generation)
        if generation.digest == self.current.generation.digest and ddl.latest_id(self.engine) == self.seen_id:
            return generation, []
        base_id = ddl.latest_id(self.engine)
        checks = self._rule_checks(generation, base_id)
        if not generation.touch_database:
            ddl.verify(self.engine, metadata)
            return generation, ddl.plan(self.engine, metadata, checks=checks, tables=False) + routes
        matching = self._matching(metadata, base_id)
        return generation, ddl.plan(self.engine, metadata, matching, checks) + routes

    def _matching(self, metadata: MetaData, base_id: int) -> frozenset[str]:
        """Tables `metadata` declares as the served generation does, when that generation is the newest
        recorded one and was applied (not just verified: `touch_database: false` checks columns only)."""
        served_id, served_metadata = self.served
        if not base_id or served_id != base_id or not self.current.generation.touch_database:
            return frozenset()
        return evolution.unchanged(served_metadata, metadata)

    def _rule_checks(self, generation: Generation, base_id: int) -> ddl.Checks:
        """The validation rules `generation` narrows over the newest recorded generation's (`models/rules.py`),
        to be counted over the rows inside the generation's transaction."""
        previous = self.current.generation
        if base_id and self.served[0] != base_id and (recorded := ddl.latest(self.engine)) is not None:
            try:  # another process recorded a newer generation that this one has not adopted yet
                previous = parse_payload(loads(recorded.payload))
            except InvalidPayload:
                log.warning("Generation #%d cannot be parsed here: validation rules are compared with the "
                            "generation served instead", recorded.id)
        return lambda connection: rules.rule_changes(connection, previous, generation)

    def generate(self, payload: dict[str, Any],
                 in_transaction: Callable[[Connection, Generation], object] = lambda *_: None, *,
                 created_by: str | None = None) -> Outcome:
        """Apply a payload; raises `InvalidPayload` (400), `SchemaConflict` (409; `EvolutionRefused` when
        the payload changes tables destructively), or a 409 `Problem` when another generation was committed
        or is being applied since this one started, changing nothing.

        `in_transaction(connection, generation)` records what the control plane keeps about a generation
        (ownership, audit) in the generation's own transaction: all of it commits, or none. `created_by` is
        the principal's subject, recorded with the generation."""
        started = time.perf_counter()
        base_id = ddl.latest_id(self.engine)  # a generation recorded after this point wins over this one
        generation = parse_payload(payload)
        ciphers = blind_keys.ciphers_for(self.engine, generation)  # unusable keys: a 400 before anything is created
        try:
            with self._lock:
                if generation.digest == self.current.generation.digest and base_id == self.seen_id:
                    return Outcome(changed=False, generation=generation)  # served, and nothing newer recorded
                routes = evolution.route_changes(self.current.generation, generation)
                created, changes = self._apply(generation, payload, base_id, in_transaction, ciphers, created_by)
                warning = self._save(payload, self.seen_id)
        except GenerationRaced as raced:
            return self._lost(generation, raced)
        self.hooks.hook.drg_generation_applied(generation=generation, created_tables=created)
        seconds = time.perf_counter() - started
        log.info("Generation %s applied in %.3f s (%d tables created, %d changes)", generation.digest[:12], seconds,
                 len(created), len(changes))
        return Outcome(changed=True, generation=generation, created_tables=created, changes=changes + routes,
                       seconds=seconds, warnings=[warning] if warning else [])

    def _apply(self, generation: Generation, payload: dict[str, Any], base_id: int,
               in_transaction: Callable[[Connection, Generation], object], ciphers: Ciphers,
               created_by: str | None) -> tuple[list[str], list[Change]]:
        """Build the app while the DDL runs, commit, swap; the tables created and the changes run. Called
        under `_lock`. A refused or failed evolution raises before the swap: the previous app keeps serving."""
        metadata = build_metadata(generation)
        building = self._builder.submit(self._build, generation, metadata, ciphers)
        text = dumps_text(payload)

        def record(connection: Connection) -> object:
            return in_transaction(connection, generation)

        if generation.touch_database:
            applied = ddl.apply(self.engine, metadata, digest=generation.digest, payload_text=text,
                                lock_timeout_ms=self.settings.lock_timeout_ms, base_id=base_id,
                                before_commit=building.result, in_transaction=record,
                                allow_destructive=generation.allow_destructive, created_by=created_by,
                                matching=self._matching(metadata, base_id),
                                checks=self._rule_checks(generation, base_id))
            created, changes, self.seen_id = applied.created, applied.changes, applied.generation_id
        else:
            ddl.verify(self.engine, metadata)
            building.result()
            created, changes = [], []
            self.seen_id = ddl.record(self.engine, digest=generation.digest, payload_text=text,
                                      lock_timeout_ms=self.settings.lock_timeout_ms, base_id=base_id,
                                      in_transaction=record, created_by=created_by,
                                      checks=self._rule_checks(generation, base_id),
                                      allow_destructive=generation.allow_destructive)
        self.current = building.result()
        self.served = (self.seen_id, metadata)
        return created, changes

    def _lost(self, generation: Generation, raced: GenerationRaced) -> Outcome:
        """Another generation won the race: adopt it if it is this very payload, else a 409."""
        if raced.digest == generation.digest:
            self.refresh()
            return Outcome(changed=False, generation=generation)
        log.warning("Generation %s refused: %s", generation.digest[:12], raced)
        raise conflict(f"Another generation was applied while this one was being applied ({raced}), on this or "
                       "another replica; nothing was changed. GET /generator shows the generation being served; "
                       "post again to replace it.", **({"generation": raced.newest_id} if raced.newest_id else {}))

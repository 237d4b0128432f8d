"""The engine: activities and tasks through their state machine, tasks handed to executors in worker threads,
callbacks, and recovery at start-up. Every change is one transaction (the rows it reads are locked first);
executors run after the commit, never on the event loop and never inside a transaction.

At most once: a task is claimed (`claimed_at`, a conditional UPDATE) before its executor gets it, and marked
delivered (`delivered_at`) once an executor that calls back has accepted it. On start-up (`recover`), for each
PROCESSING activity: a running task never claimed is handed to its executor now; one delivered to an executor
that calls back keeps waiting for its callback; one claimed but not finished (the service stopped while it
ran, or while handing it over) is marked FAILED with that reason and not run again, and the activity FAILED.
Recovery assumes that the processes running activities on a database restart together (one service);
a live process's claimed task would otherwise be failed by another's recovery (it would still not run twice)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import uuid4

from sqlalchemy import Connection, Engine, Row, delete, insert, select, update

from generator.identity import Principal
from generator.lifecycle.descriptor import parse_lifecycle, resolve
from generator.lifecycle.executors import Registry, TaskOrder, TaskResult, secret_prefix
from generator.lifecycle.problems import OdmProblem, not_found
from generator.lifecycle.states import ABORTED, FAILED, PLANNED, PROCESSED, PROCESSING, check_move
from generator.lifecycle.store import activity_view, require_owner, task_view
from generator.lifecycle.tables import activities, now, stages, tasks, variables, versions
from generator.models.engine import for_writes

log = logging.getLogger(__name__)


def unknown_target(message: str) -> OdmProblem:
    return OdmProblem(422, 42201, "Activity target not valid", message)


class LifecycleEngine:
    def __init__(self, engine: Engine, registry: Registry, workers: int = 4) -> None:
        self.engine, self.registry = engine, registry
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drg-lifecycle")
        self.secrets: dict[int, dict[str, str]] = {}  # activity id → x-odm-*-executor-secret-* headers; memory only
        self.runner = uuid4().hex

    def close(self) -> None:
        """Wait for the tasks being handed over (bounded by the executors' timeouts); drop those not started."""
        self.pool.shutdown(wait=True, cancel_futures=True)

    def delivered(self, task_id: int) -> bool:
        """Has an executor that calls back accepted the task?"""
        with self.engine.connect() as connection:
            return connection.execute(select(tasks.c.delivered_at).where(tasks.c.id == task_id)).scalar() is not None

    # -- requests -----------------------------------------------------------------------------------------
    def create(self, principal: Principal, product: str, version: str, stage: str, start: bool,
               secrets: Mapping[str, str]) -> dict[str, Any]:
        """A PLANNED activity with the stage's PLANNED tasks; started at once when `start`."""
        with for_writes(self.engine).begin() as connection:
            require_owner(connection, principal, product)
            row = connection.execute(select(versions.c.descriptor).where(
                (versions.c.product == product) & (versions.c.version == version)).with_for_update()).first()
            if row is None:
                raise unknown_target(f"Data product {product!r} has no version {version!r}")
            plan = parse_lifecycle(row.descriptor, self.registry.names())
            if stage not in plan:
                raise unknown_target(f"Version {version} of data product {product!r} has no stage {stage!r} in its "
                                     f"lifecycle (stages: {', '.join(plan) or 'none'})")
            ident = connection.execute(insert(activities).values(
                product=product, version=version, stage=stage, status=PLANNED).returning(activities.c.id)).scalar_one()
            for position, task in enumerate(plan[stage]):
                connection.execute(insert(tasks).values(
                    activity_id=ident, position=position, executor=task.executor, template=task.template,
                    configurations=task.configurations, status=PLANNED))
            next_task = self._start(connection, self._activity(connection, ident)) if start else None
            view = activity_view(self._activity(connection, ident))
            view["tasks"] = [task_view(t) for t in self._tasks(connection, ident)]
        self._submit(ident, next_task, secrets if start else None)
        return view

    def start(self, principal: Principal, ident: int, secrets: Mapping[str, str]) -> dict[str, Any]:
        with for_writes(self.engine).begin() as connection:
            activity = self._activity(connection, ident, lock=True)
            require_owner(connection, principal, activity.product)
            next_task = self._start(connection, activity)
            status = self._activity(connection, ident).status
        self._submit(ident, next_task, secrets)
        return {"status": status}

    def abort(self, principal: Principal, ident: int) -> dict[str, Any]:
        with for_writes(self.engine).begin() as connection:
            activity = self._activity(connection, ident, lock=True)
            require_owner(connection, principal, activity.product)
            check_move("activity", ident, activity.status, ABORTED)
            moment = now()
            connection.execute(update(tasks).where((tasks.c.activity_id == ident)
                                                   & tasks.c.status.in_((PLANNED, PROCESSING)))
                               .values(status=ABORTED, finished_at=moment))
            connection.execute(update(activities).where(activities.c.id == ident).values(
                status=ABORTED, finished_at=moment, errors=f"Aborted by {principal.subject}",
                results=self._results(connection, ident)))
        self.secrets.pop(ident, None)
        return {"status": ABORTED}

    def callback(self, principal: Principal, task_id: int, result: TaskResult,
                 update_variables: bool) -> dict[str, Any]:
        """An executor's TaskResult: 409 (and nothing changed) unless the task is PROCESSING."""
        with for_writes(self.engine).begin() as connection:
            task = self._task(connection, task_id)
            activity = self._activity(connection, task.activity_id, lock=True)
            require_owner(connection, principal, activity.product)
            task = self._task(connection, task_id)  # re-read under the activity's lock
            if task.status != PROCESSING:
                raise OdmProblem(409, 40902, "Illegal task state transition",
                                 f"Task {task_id} is {task.status}; only a PROCESSING task takes a result "
                                 f"(current state: {task.status}); nothing was changed")
            next_task = self._complete(connection, task, result, update_variables)
            status = self._task(connection, task_id).status
        self._submit(task.activity_id, next_task)
        return {"status": status}

    # -- transitions (inside a transaction) ---------------------------------------------------------------
    def _start(self, connection: Connection, activity: Row) -> int | None:
        check_move("activity", activity.id, activity.status, PROCESSING)
        version = (versions.c.product == activity.product) & (versions.c.version == activity.version)
        connection.execute(select(versions.c.frozen).where(version).with_for_update())  # one start at a time
        busy = connection.execute(select(activities.c.id).where(
            (activities.c.product == activity.product) & (activities.c.version == activity.version)
            & (activities.c.status == PROCESSING) & (activities.c.id != activity.id))).scalars().first()
        if busy is not None:
            raise OdmProblem(409, 40901, "Another activity is running",
                             f"Activity {busy} on version {activity.version} of data product {activity.product!r} "
                             "is PROCESSING; start this one when it has ended")
        connection.execute(update(activities).where(activities.c.id == activity.id)
                           .values(status=PROCESSING, started_at=now()))
        connection.execute(update(versions).where(version).values(frozen=True))
        return self._advance(connection, activity.id)

    def _advance(self, connection: Connection, ident: int) -> int | None:
        """Start the next PLANNED task (configurations resolved); None when the activity has ended PROCESSED."""
        task = connection.execute(select(tasks).where((tasks.c.activity_id == ident) & (tasks.c.status == PLANNED))
                                  .order_by(tasks.c.position).limit(1)).first()
        if task is None:
            self._finish(connection, ident, PROCESSED)
            return None
        known = dict(connection.execute(select(variables.c.name, variables.c.value)
                                        .where(variables.c.activity_id == ident)).all())
        connection.execute(update(tasks).where(tasks.c.id == task.id).values(
            status=PROCESSING, started_at=now(), configurations=resolve(task.configurations, known)))
        return task.id

    def _complete(self, connection: Connection, task: Row, result: TaskResult, update_variables: bool) -> int | None:
        connection.execute(update(tasks).where(tasks.c.id == task.id).values(
            status=result.status, results=result.results, errors=result.errors, finished_at=now()))
        if result.status == FAILED:
            connection.execute(update(tasks).where((tasks.c.activity_id == task.activity_id)
                                                   & (tasks.c.status == PLANNED)).values(status=ABORTED))
            reason = f"Task {task.id} failed: {result.errors or 'no reason given'}"
            self._finish(connection, task.activity_id, FAILED, reason)
            return None
        if update_variables and isinstance(result.results, Mapping):
            for name, value in result.results.items():
                if isinstance(value, str):
                    key = (variables.c.activity_id == task.activity_id) & (variables.c.name == name)
                    connection.execute(delete(variables).where(key))
                    connection.execute(insert(variables).values(activity_id=task.activity_id, name=name,
                                                                value=value, task_id=task.id))
        return self._advance(connection, task.activity_id)

    def _finish(self, connection: Connection, ident: int, status: str, errors: str | None = None) -> None:
        moment = now()
        results = self._results(connection, ident)
        connection.execute(update(activities).where(activities.c.id == ident).values(
            status=status, finished_at=moment, results=results, errors=errors))
        if status == PROCESSED:
            activity = self._activity(connection, ident)
            key = (stages.c.product == activity.product) & (stages.c.version == activity.version)
            connection.execute(update(stages).where(key & stages.c.finished_at.is_(None)).values(finished_at=moment))
            connection.execute(insert(stages).values(product=activity.product, version=activity.version,
                                                     stage=activity.stage, activity_id=ident, results=results,
                                                     started_at=moment))
        self.secrets.pop(ident, None)

    def _results(self, connection: Connection, ident: int) -> dict[str, Any]:
        return {str(t.id): {"executorRef": t.executor, "status": t.status, "results": t.results, "errors": t.errors}
                for t in self._tasks(connection, ident)}

    def _activity(self, connection: Connection, ident: int, lock: bool = False) -> Row:
        query = select(activities).where(activities.c.id == ident)
        row = connection.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise not_found(40401, "Activity not found", f"Activity with id equals to [{ident}] does not exist")
        return row

    def _task(self, connection: Connection, ident: int) -> Row:
        row = connection.execute(select(tasks).where(tasks.c.id == ident)).first()
        if row is None:
            raise not_found(40402, "Task not found", f"Task with id equals to [{ident}] does not exist")
        return row

    def _tasks(self, connection: Connection, ident: int) -> list[Row]:
        return list(connection.execute(select(tasks).where(tasks.c.activity_id == ident).order_by(tasks.c.position)))

    # -- running tasks (worker threads) -------------------------------------------------------------------
    def _submit(self, activity_id: int, task_id: int | None, secrets: Mapping[str, str] | None = None) -> None:
        if task_id is None:
            return
        if secrets:
            self.secrets[activity_id] = dict(secrets)
        self.pool.submit(self._run, task_id)

    def _run(self, task_id: int) -> None:
        try:
            self._hand_over(task_id)
        except Exception:  # a worker must never die silently; the traceback names no secret (see _scrub)
            log.exception("Lifecycle task %d could not be handed to its executor", task_id)

    def _hand_over(self, task_id: int) -> None:
        with for_writes(self.engine).begin() as connection:
            claimed = connection.execute(update(tasks).where(
                (tasks.c.id == task_id) & (tasks.c.status == PROCESSING) & tasks.c.claimed_at.is_(None))
                .values(claimed_at=now()))
            if claimed.rowcount != 1:
                return  # another process claimed it, or it was aborted meanwhile
            task = self._task(connection, task_id)
        executor = self.registry.get(task.executor)
        secrets = {k: v for k, v in self.secrets.get(task.activity_id, {}).items()
                   if k.startswith(secret_prefix(task.executor))}
        if executor is None:
            result: TaskResult | None = TaskResult(FAILED, errors=f"Executor {task.executor!r} is no longer configured")
        else:
            order = TaskOrder(task.id, task.activity_id, task.executor, task.template, task.configurations or {},
                              task_view(task))
            try:
                result = executor.run(order, secrets)
            except Exception as exc:
                result = TaskResult(FAILED, errors=_scrub(f"Executor {task.executor!r} failed: {exc}", secrets))
                log.warning("Lifecycle task %d: %s", task_id, result.errors)
        if result is None:
            with for_writes(self.engine).begin() as connection:
                connection.execute(update(tasks).where((tasks.c.id == task_id) & (tasks.c.status == PROCESSING))
                                   .values(delivered_at=now()))
            return
        if result.status not in (PROCESSED, FAILED):
            result = TaskResult(FAILED, result.results, f"Executor {task.executor!r} returned status {result.status!r}")
        self.finish_task(task_id, TaskResult(result.status, result.results, _scrub(result.errors, secrets)))

    def finish_task(self, task_id: int, result: TaskResult, update_variables: bool = True) -> None:
        """Complete a task from inside the service (an executor that ran here, recovery): a task no longer
        PROCESSING (aborted meanwhile) is left as it is."""
        with for_writes(self.engine).begin() as connection:
            task = self._task(connection, task_id)
            self._activity(connection, task.activity_id, lock=True)
            task = self._task(connection, task_id)
            if task.status != PROCESSING:
                log.info("Lifecycle task %d ended as %s while its executor ran; its result is dropped", task_id,
                         task.status)
                return
            next_task = self._complete(connection, task, result, update_variables)
        self._submit(task.activity_id, next_task)

    # -- start-up -----------------------------------------------------------------------------------------
    def recover(self) -> None:
        """Resume the activities that were PROCESSING when the service stopped (see the module's docs)."""
        with self.engine.connect() as connection:
            running = connection.execute(select(activities.c.id).where(activities.c.status == PROCESSING)
                                         .order_by(activities.c.id)).scalars().all()
        for ident in running:
            self._recover(ident)

    def _recover(self, ident: int) -> None:
        dispatch: int | None = None
        failed: int | None = None
        with for_writes(self.engine).begin() as connection:
            activity = self._activity(connection, ident, lock=True)
            if activity.status != PROCESSING:
                return
            task = connection.execute(select(tasks).where((tasks.c.activity_id == ident)
                                                          & (tasks.c.status == PROCESSING))).first()
            if task is None:
                dispatch = self._advance(connection, ident)
            elif task.claimed_at is None:
                dispatch = task.id
            elif task.delivered_at is None:
                failed = task.id
        if failed is not None:
            reason = (f"The service stopped while task {failed} was running in its executor; it is not run again "
                      "(a task runs at most once). Start a new activity to retry.")
            log.warning("Lifecycle activity %d: %s", ident, reason)
            self.finish_task(failed, TaskResult(FAILED, errors=reason))
        elif dispatch is not None:
            log.info("Lifecycle activity %d resumes with task %d", ident, dispatch)
            self._submit(ident, dispatch)


def _scrub(text: str | None, secrets: Mapping[str, str]) -> str | None:
    """`text` without any secret's value in it (an executor's error may echo a header back)."""
    if text is None:
        return None
    for value in secrets.values():
        if value:
            text = text.replace(value, "***")
    return text

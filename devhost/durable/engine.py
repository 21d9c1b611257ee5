"""Runs Durable Functions orchestrations on devhost: episodes, activities and timers over the durable store.

An episode takes an instance's waiting messages, calls the orchestrator function (the library's own replay
engine, which DFApp registered) with the history, replays the returned actions against the history as the
extension does (durable_replay), and records the outcome in one transaction: the new events, the status,
the custom status and output. Then it starts what is new: activities on a bounded pool (host.json
extensions.durableTask.maxConcurrentActivityFunctions) and timers. Activity results and fired timers go to
the instance's inbox and wake the next episode; several that arrive while an episode runs are handled by
one episode, as the task hub batches messages. On start, unfinished instances resume from the store:
activities scheduled without a result run again (at least once, as in Azure) and timers are re-armed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.functions import OrchestrationContext, meta
from azure.functions.durable_functions import ActivityTriggerConverter

from devhost.app.function_index import FunctionSpec
from devhost.app.host_config import DurableConfig
from devhost.app.invoker import FunctionFailed, Invoker
from devhost.durable import history as events
from devhost.durable.episode import (
    OrchestratorAnswer,
    activity_failure,
    orchestration_context,
    read_answer,
    read_failure,
)
from devhost.durable.history import EventType, HistoryEvent, OrchestrationStatus, event_type
from devhost.durable.replay import ActivityWork, ReplayFailure, ReplayOutcome, replay
from devhost.durable.store import DurableStore, EpisodeCommit, InstanceRecord, RuntimeStatus
from devhost.durable.timers import DurableTimers

logger = logging.getLogger("devhost")

ORCHESTRATION_TRIGGER = "orchestrationTrigger"
ACTIVITY_TRIGGER = "activityTrigger"
DURABLE_CLIENT = "durableClient"


class OrchestratorNotFound(LookupError):
    """No enabled orchestrator function has that name."""


def durable_name(spec: FunctionSpec) -> str:
    """The name the extension registers: the trigger's orchestration/activity property, else the function's."""
    explicit = spec.trigger.get("orchestration") or spec.trigger.get("activity")
    return str(explicit or spec.name)


@dataclass(frozen=True, slots=True)
class _Episode:
    record: InstanceRecord
    new: list[HistoryEvent]
    consumed_through: int
    now: datetime


class DurableRuntime:
    def __init__(
        self,
        specs: Sequence[FunctionSpec],
        invoker: Invoker,
        store: DurableStore,
        config: DurableConfig,
        stop: threading.Event,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """stop: the host's stop event; once set, no episode or activity starts (what was queued stays in the
        store for the next start)."""
        self._orchestrators = {durable_name(s).lower(): s for s in specs if s.trigger_type == ORCHESTRATION_TRIGGER}
        self._activities = {durable_name(s).lower(): s for s in specs if s.trigger_type == ACTIVITY_TRIGGER}
        self._invoker = invoker
        self.store = store
        self.config = config
        self._clock = clock
        self._lock = threading.Lock()
        self._busy: set[str] = set()
        self._again: set[str] = set()
        self._stopping = stop
        self._episodes = ThreadPoolExecutor(config.max_concurrent_orchestrators, "devhost-orchestrator")
        self._activity_pool = ThreadPoolExecutor(config.max_concurrent_activities, "devhost-activity")
        self._timers = DurableTimers(self._timer_fired, clock)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> threading.Thread:
        """Resume unfinished instances and start the timer thread (returned, for the host to join)."""
        thread = self._timers.start()
        for instance_id in self.store.unfinished():
            self._resume(instance_id)
        return thread

    def stop(self) -> None:
        """Finish running episodes and activities; queued work stays in the store for the next start."""
        self._stopping.set()
        self._timers.stop()
        self._episodes.shutdown(wait=True, cancel_futures=True)
        self._activity_pool.shutdown(wait=True, cancel_futures=True)

    def _resume(self, instance_id: str) -> None:
        past = self.store.history(instance_id)
        _, waiting = self.store.inbox(instance_id)
        done = events.completed_task_ids(past + waiting)
        resumed = 0
        for event in past:
            kind, event_id = event_type(event), int(event["EventId"])
            if kind is EventType.TASK_SCHEDULED and event_id not in done:
                self._start_activity(instance_id, ActivityWork(event_id, str(event["Name"]), event.get("Input")))
                resumed += 1
            elif kind is EventType.TIMER_CREATED and event_id not in done:
                self._timers.arm(instance_id, event_id, events.parse_timestamp(str(event["FireAt"])))
        logger.info("durable instance %s resumes (%d activities scheduled again)", instance_id, resumed)
        if waiting:
            self.mark_ready(instance_id)

    # -- client operations (the HTTP API calls these) -------------------------------------------------

    def start_instance(self, name: str, instance_id: str | None, raw_input: str | None) -> InstanceRecord:
        """Raises OrchestratorNotFound, or InstanceExists when a live instance has the id."""
        spec = self._orchestrators.get(name.lower())
        if spec is None:
            raise OrchestratorNotFound(name)
        record = self.store.create(instance_id or uuid.uuid4().hex, durable_name(spec), raw_input, self._clock())
        self.mark_ready(record.instance_id)
        return record

    def raise_event(self, instance_id: str, name: str, raw_input: str | None) -> None:
        self.store.enqueue(instance_id, events.event_raised(self._clock(), name, raw_input))
        self.mark_ready(instance_id)

    def terminate(self, instance_id: str, reason: str | None) -> None:
        self.store.enqueue(instance_id, events.execution_terminated(self._clock(), reason))
        self.mark_ready(instance_id)

    # -- episodes --------------------------------------------------------------------------------------

    def mark_ready(self, instance_id: str) -> None:
        """Run an episode for the instance soon; one at a time per instance, later messages batched."""
        if self._stopping.is_set():
            return
        with self._lock:
            if instance_id in self._busy:
                self._again.add(instance_id)
                return
            self._busy.add(instance_id)
        try:
            self._episodes.submit(self._episode_loop, instance_id)
        except RuntimeError:  # shut down meanwhile; the messages wait in the store
            with self._lock:
                self._busy.discard(instance_id)

    def _episode_loop(self, instance_id: str) -> None:
        while not self._stopping.is_set():
            try:
                self._run_episode(instance_id)
            except Exception:
                logger.exception("durable instance %s: episode failed; it runs again on the next message", instance_id)
            with self._lock:
                if instance_id in self._again and not self._stopping.is_set():
                    self._again.discard(instance_id)
                    continue
                self._again.discard(instance_id)
                self._busy.discard(instance_id)
                return
        with self._lock:
            self._busy.discard(instance_id)

    def _run_episode(self, instance_id: str) -> None:
        record = self.store.get(instance_id)
        if record is None:
            return
        consumed_through, waiting = self.store.inbox(instance_id)
        if not waiting:
            return
        now = self._clock()
        if record.runtime_status.terminal:  # late results, events for a finished instance
            self.store.discard_inbox(instance_id, consumed_through)
            return
        past = self.store.history(instance_id)
        new = [events.orchestrator_started(now), *_accepted(past, waiting)]
        episode = _Episode(record, new, consumed_through, now)
        terminated = next((e for e in new if event_type(e) is EventType.EXECUTION_TERMINATED), None)
        if terminated is not None:
            self._finish(episode, RuntimeStatus.TERMINATED, terminated.get("Input"), record.custom_status)
            logger.info("durable instance %s terminated", instance_id)
            return
        if len(new) == 1:  # only duplicates were waiting
            self.store.discard_inbox(instance_id, consumed_through)
            return
        answer = self._call_orchestrator(record, past, new)
        custom_status = None if answer.custom_status is None else json.dumps(answer.custom_status)
        try:
            outcome = replay(past + new, answer.actions, lambda name: name.lower() in self._activities)
        except ReplayFailure as failure:
            self._finish(episode, RuntimeStatus.FAILED, str(failure), custom_status)
            logger.error("durable instance %s failed: %s", instance_id, failure)
            return
        if answer.error is not None:
            message = f"Orchestrator function '{record.name}' failed: {answer.error}"
            self._finish(episode, RuntimeStatus.FAILED, message, custom_status)
            logger.error("durable instance %s failed: %s", instance_id, message)
        elif answer.done and answer.continued_as_new:
            self._continue_as_new(episode, answer, custom_status)
        elif answer.done:
            self._finish(episode, RuntimeStatus.COMPLETED, json.dumps(answer.output), custom_status)
            logger.info("durable instance %s completed", instance_id)
        else:
            self._schedule(episode, outcome, custom_status)

    def _call_orchestrator(
        self, record: InstanceRecord, past: list[HistoryEvent], new: list[HistoryEvent]
    ) -> OrchestratorAnswer:
        spec = self._orchestrators.get(record.name.lower())
        if spec is None:
            return OrchestratorAnswer(
                done=False, error=f"The function '{record.name}' doesn't exist, is disabled, or is not an orchestrator."
            )
        context = OrchestrationContext(orchestration_context(record.instance_id, past, new, record.input))
        try:
            returned = self._invoker.call(spec, {str(spec.trigger["name"]): context}, log_failure=False)
        except FunctionFailed as failed:
            return read_failure(failed.__cause__ or failed)
        try:
            return read_answer(returned)
        except ValueError as bad:
            return OrchestratorAnswer(done=False, error=str(bad))

    def _schedule(self, episode: _Episode, outcome: ReplayOutcome, custom_status: str | None) -> None:
        now, instance_id = episode.now, episode.record.instance_id
        scheduled: list[tuple[int, HistoryEvent]] = [
            (work.event_id, events.task_scheduled(now, work.event_id, work.name, work.raw_input))
            for work in outcome.activities
        ]
        scheduled += [(t.event_id, events.timer_created(now, t.event_id, t.fire_at)) for t in outcome.timers]
        recorded = [*episode.new, *(event for _, event in sorted(scheduled, key=lambda pair: pair[0]))]
        recorded.append(events.orchestrator_completed(now))
        record = episode.record
        self._commit(record, episode.consumed_through, recorded, RuntimeStatus.RUNNING, None, custom_status, now)
        self._timers.disarm(instance_id, outcome.cancelled_timer_ids)
        for timer in outcome.timers:
            if not timer.cancelled:
                self._timers.arm(instance_id, timer.event_id, timer.fire_at)
        for work in outcome.activities:
            self._start_activity(instance_id, work)

    def _finish(self, episode: _Episode, status: RuntimeStatus, output: str | None, custom_status: str | None) -> None:
        dtfx_status = {
            RuntimeStatus.COMPLETED: OrchestrationStatus.COMPLETED,
            RuntimeStatus.FAILED: OrchestrationStatus.FAILED,
            RuntimeStatus.TERMINATED: OrchestrationStatus.TERMINATED,
        }[status]
        recorded = [
            *episode.new,
            events.execution_completed(episode.now, dtfx_status, output),
            events.orchestrator_completed(episode.now),
        ]
        self._commit(episode.record, episode.consumed_through, recorded, status, output, custom_status, episode.now)
        self._timers.disarm(episode.record.instance_id)

    def _continue_as_new(self, episode: _Episode, answer: OrchestratorAnswer, custom_status: str | None) -> None:
        recorded = [
            *episode.new,
            events.execution_completed(episode.now, OrchestrationStatus.CONTINUED_AS_NEW, json.dumps(answer.output)),
            events.orchestrator_completed(episode.now),
        ]
        self.store.commit(
            EpisodeCommit(
                instance_id=episode.record.instance_id,
                consumed_through=episode.consumed_through,
                events=recorded,
                status=RuntimeStatus.CONTINUED_AS_NEW,
                output=None,
                custom_status=custom_status,
                now=episode.now,
                next_input=answer.continue_as_new_input,
                continue_as_new=True,
            )
        )
        self._timers.disarm(episode.record.instance_id)
        self.mark_ready(episode.record.instance_id)

    def _commit(
        self,
        record: InstanceRecord,
        consumed_through: int,
        recorded: list[HistoryEvent],
        status: RuntimeStatus,
        output: str | None,
        custom_status: str | None,
        now: datetime,
    ) -> None:
        self.store.commit(
            EpisodeCommit(record.instance_id, consumed_through, recorded, status, output, custom_status, now)
        )

    # -- activities and timers -------------------------------------------------------------------------

    def _start_activity(self, instance_id: str, work: ActivityWork) -> None:
        if self._stopping.is_set():
            return  # TaskScheduled without a result: the next start runs it
        with contextlib.suppress(RuntimeError):  # the pool shut down meanwhile; same as above
            self._activity_pool.submit(self._run_activity, instance_id, work)

    def _run_activity(self, instance_id: str, work: ActivityWork) -> None:
        if self._stopping.is_set():
            return  # queued when the host began to stop: it runs after the next start
        spec = self._activities.get(work.name.lower())
        now: datetime
        try:
            if spec is None:  # renamed or disabled since it was scheduled
                raise ValueError(f"The function '{work.name}' doesn't exist, is disabled, or is not an activity.")
            argument = ActivityTriggerConverter.decode(meta.Datum(work.raw_input, "json"), trigger_metadata={})
            returned = self._invoker.call(spec, {str(spec.trigger["name"]): argument})
            result: Any = ActivityTriggerConverter.encode(returned, expected_type=None).value
            now = self._clock()
            outcome = events.task_completed(now, work.event_id, None if result is None else str(result))
        except (FunctionFailed, ValueError) as failed:
            reason, details = activity_failure(work.name, failed.__cause__ or failed)
            now = self._clock()
            outcome = events.task_failed(now, work.event_id, reason, details)
        self.store.enqueue(instance_id, outcome)
        self.mark_ready(instance_id)

    def _timer_fired(self, instance_id: str, timer_id: int, fire_at: datetime) -> None:
        try:
            self.store.enqueue(instance_id, events.timer_fired(self._clock(), timer_id, fire_at))
        except Exception:
            logger.exception("durable instance %s: timer %d could not be recorded", instance_id, timer_id)
            return
        self.mark_ready(instance_id)


def _accepted(past: list[HistoryEvent], waiting: list[HistoryEvent]) -> list[HistoryEvent]:
    """The waiting messages an episode takes: a second result for the same task (an activity run again
    after a restart) and a second start are dropped, as DTFx drops duplicates."""
    done = events.completed_task_ids(past)
    started = any(event_type(e) is EventType.EXECUTION_STARTED for e in past)
    accepted: list[HistoryEvent] = []
    for event in waiting:
        kind = event_type(event)
        if kind is EventType.EXECUTION_STARTED:
            if started:
                continue
            started = True
        elif kind in (EventType.TASK_COMPLETED, EventType.TASK_FAILED, EventType.TIMER_FIRED):
            task_id = int(event["TimerId" if kind is EventType.TIMER_FIRED else "TaskScheduledId"])
            if task_id in done:
                continue
            done.add(task_id)
        accepted.append(event)
    # Put the start first: a message that raced ahead of it must not precede ExecutionStarted.
    return sorted(accepted, key=lambda e: event_type(e) is not EventType.EXECUTION_STARTED)

"""QA tasks: doors that take primitive ids and call one service; safe to run twice.

- `quality.post_call` (enqueued when a call ends, apps.calls.services._after_end):
  the automatic QA run (if the agent's settings say so), then the `call.ended`
  webhook with what QA found. An unreachable LLM is retried with backoff; after the
  last retry the result is stored "failed" and `call.ended` still goes out.
- `quality.rerun`: a re-run asked for in the portal or the admin.
- `quality.sweep` (beat): re-enqueues post-call work for ended calls that have no
  `call.ended` event half an hour later (the broker was down when they ended), and test
  scenario runs and call replays left pending or claimed by a dead worker.
- `quality.scenario_run`, `quality.suite_scheduled`, `quality.call_replay`: test suites and
  replays (apps.quality.suite_services).
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection
from django_tenants.utils import schema_context

from apps.core.errors import NotFound, ProviderError

logger = logging.getLogger(__name__)


def _client():
    """The client whose schema the task runs in (a real Client row: eager runs and
    schema_context carry only a stand-in tenant)."""
    from apps.tenancy.selectors import client_list

    if connection.schema_name == "public":
        return None
    return client_list().filter(schema_name=connection.schema_name).first()


@shared_task(name="quality.post_call", bind=True, max_retries=6)
def post_call(self, call_id: str) -> str:
    from apps.quality.services import qa_record_unavailable, qa_run
    from apps.webhooks.services import webhook_call_ended_emit

    client = _client()
    if client is None:
        logger.warning("quality.post_call for %s sent outside a client schema; ignored", call_id)
        return "ignored"
    try:
        outcome = qa_run(client=client, call_id=call_id)
        status = outcome.result.status if outcome.result else f"skipped: {outcome.reason}"
    except NotFound:
        return "gone"
    except ProviderError as error:
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=min(600, 10 * 2 ** self.request.retries)) from error
        qa_record_unavailable(client=client, call_id=call_id, error=error.message)
        status = "failed"
    webhook_call_ended_emit(client=client, call_id=call_id)
    return status


@shared_task(name="quality.rerun", bind=True, max_retries=6)
def rerun(self, call_id: str, run_number: int) -> str:
    from apps.quality.services import qa_record_unavailable, qa_run

    client = _client()
    if client is None:
        return "ignored"
    try:
        outcome = qa_run(client=client, call_id=call_id, run_number=int(run_number), manual=True)
    except NotFound:
        return "gone"
    except ProviderError as error:
        if self.request.retries < self.max_retries:
            raise self.retry(countdown=min(600, 10 * 2 ** self.request.retries)) from error
        qa_record_unavailable(client=client, call_id=call_id, error=error.message, run_number=int(run_number))
        return "failed"
    return outcome.result.status if outcome.result else outcome.reason


@shared_task(name="quality.sweep")
def sweep() -> int:
    """Beat (every 5 minutes, public): per client, post-call work a lost task never did."""
    from apps.core.tasks import in_every_client
    from apps.quality.services import qa_post_call_requeue_missed
    from apps.quality.suite_services import suite_runs_requeue_stale

    missed = sum(in_every_client(lambda client: qa_post_call_requeue_missed(), what="quality sweep"))
    return missed + sum(in_every_client(lambda client: suite_runs_requeue_stale(), what="test runs sweep"))


def _send(task, *args, schema: str) -> None:
    try:
        with schema_context(schema):
            task.delay(*args)
    except Exception:  # noqa: BLE001 - the broker is down: never break the caller
        logger.exception("could not enqueue %s%r", task.name, args)


def post_call_later(*, call_id, schema: str) -> None:
    """What a call's end enqueues (apps.calls.services._after_end)."""
    _send(post_call, str(call_id), schema=schema)


def rerun_later(*, call_id: str, run_number: int, schema: str) -> None:
    _send(rerun, call_id, run_number, schema=schema)


# --- test suites and call replays (apps.quality.suite_services) -------------------------------------------


@shared_task(name="quality.scenario_run")
def scenario_run(scenario_run_id: int) -> str:
    from apps.quality.suite_services import scenario_run_execute

    return scenario_run_execute(scenario_run_id=int(scenario_run_id), client=_client())


@shared_task(name="quality.suite_scheduled")
def suite_scheduled(suite_id: int) -> str:
    """Beat (a django-celery-beat entry per scheduled suite, in the client's schema)."""
    from apps.quality.suite_services import suite_run_scheduled

    run = suite_run_scheduled(suite_id=int(suite_id), client=_client())
    return f"run {run.pk}" if run is not None else "nothing to run"


@shared_task(name="quality.call_replay")
def call_replay(replay_id: int) -> str:
    from apps.quality.suite_services import call_replay_execute

    return call_replay_execute(replay_id=int(replay_id), client=_client())


def scenario_runs_later(*, scenario_run_ids: list[int], schema: str) -> None:
    """One task per scenario, sent as a Celery group: the workers run them in parallel."""
    from celery import group

    try:
        with schema_context(schema):
            group(scenario_run.s(run_id) for run_id in scenario_run_ids).apply_async()
    except Exception:  # noqa: BLE001 - the broker is down: the runs stay pending, shown as such
        logger.exception("could not enqueue scenario runs %s", scenario_run_ids)


def call_replay_later(*, replay_id: int, schema: str) -> None:
    _send(call_replay, replay_id, schema=schema)

"""The job store's durability levels: promises sync to disk, intermediate steps need not."""

from __future__ import annotations

import time
from pathlib import Path

from ocean_provider.engine.store import JobStore
from ocean_provider.wire.jobs import JobStatus, OperatorJob

FULL, NORMAL = 2, 1


def synchronous(store: JobStore) -> int:
    level: int = store._db.execute("PRAGMA synchronous").fetchone()[0]
    return level


def _queued(store: JobStore) -> OperatorJob:
    return store.create(
        owner="0xowner",
        provider="0xprovider",
        agreement_id="0xagreement",
        environment="env",
        workflow={},
        algo_did="raw",
        input_dids=[],
        queue_seconds=60,
    )


def test_promises_commit_full_and_intermediate_steps_normal(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "engine.db")
    job = _queued(store)
    assert synchronous(store) == FULL
    assert store.claim_next("env", 1, time.time() + 60) == job.job_id
    assert synchronous(store) == FULL
    for status in (JobStatus.CONFIGURING, JobStatus.PROVISIONED, JobStatus.RUNNING):
        assert store.advance(job.job_id, status)
        assert synchronous(store) == NORMAL
    assert store.finish(job.job_id, JobStatus.COMPLETED)
    assert synchronous(store) == FULL
    record = store.get(job.job_id)
    assert record is not None and record.job.status == JobStatus.COMPLETED
    store.close()


def test_intermediate_steps_survive_reopening(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "engine.db")
    job = _queued(store)
    store.claim_next("env", 1, time.time() + 60)
    store.advance(job.job_id, JobStatus.RUNNING)
    store.close()
    reopened = JobStore(tmp_path / "engine.db")
    ((job_id, status, _deadline, _stopreq),) = reopened.active()
    assert (job_id, status) == (job.job_id, JobStatus.RUNNING)
    reopened.close()

"""The engine's job store (SQLite): state machine transitions, claims and deadlines.

One connection guarded by a lock; every transition is one transaction, and a
job is claimed by exactly one worker (status 1 -> 10 under BEGIN IMMEDIATE).

Durability (WAL): a transaction the engine has promised something on (a queued
job, a claim, a terminal state, a stop or delete) commits with ``synchronous=FULL``
and survives a power cut. The steps between a claim and the end (20, 30, 40, 60)
commit with ``NORMAL``: they survive an engine crash, and a power cut can only
take the job back to an earlier non-queued, non-terminal state, which ``recover``
ends exactly as it would have ended the later one. The next FULL commit syncs
the whole log, theirs included.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ocean_provider.wire.jobs import TERMINAL, JobStatus, OperatorJob, ResultFile

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    provider TEXT NOT NULL,
    agreement_id TEXT NOT NULL,
    environment TEXT NOT NULL,
    status INTEGER NOT NULL,
    status_text TEXT NOT NULL,
    date_created REAL NOT NULL,
    date_finished REAL,
    deadline REAL NOT NULL,
    stopreq INTEGER NOT NULL DEFAULT 0,
    workflow TEXT NOT NULL,
    results TEXT NOT NULL DEFAULT '[]',
    algo_did TEXT NOT NULL,
    input_dids TEXT NOT NULL,
    expires REAL
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (environment, status, date_created);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs (owner);
"""
ACTIVE = tuple(sorted(s.value for s in JobStatus if not s.terminal))
DEFAULT_RETENTION = 86400.0


@dataclass(frozen=True)
class StoredResult:
    result: ResultFile
    path: str


@dataclass(frozen=True)
class JobRecord:
    job: OperatorJob
    provider: str
    workflow: dict[str, Any]
    deadline: float
    results: list[StoredResult]


class AgreementInUse(Exception):
    pass


class JobStore:
    def __init__(self, path: Path, retention: Mapping[str, float] | None = None) -> None:
        """``retention``: seconds a finished job's files are kept, by environment id."""
        self._retention = dict(retention or {})
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._synchronous = "FULL"

    @contextmanager
    def _tx(self, synchronous: str = "FULL") -> Iterator[sqlite3.Connection]:
        """One write transaction, committed at ``synchronous`` (FULL or NORMAL)."""
        with self._lock:
            if synchronous != self._synchronous:  # a connection setting; cheap to switch
                self._db.execute(f"PRAGMA synchronous={synchronous}")
                self._synchronous = synchronous
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def create(
        self,
        *,
        owner: str,
        provider: str,
        agreement_id: str,
        environment: str,
        workflow: dict[str, Any],
        algo_did: str,
        input_dids: Sequence[str],
        queue_seconds: float,
    ) -> OperatorJob:
        """Queue a job (status 1); one agreement starts at most one active job."""
        now = time.time()
        job_id = uuid.uuid4().hex
        with self._tx() as db:
            marks = ",".join("?" * len(ACTIVE))
            busy = db.execute(
                f"SELECT 1 FROM jobs WHERE agreement_id = ? AND status IN ({marks})",
                (agreement_id, *ACTIVE),
            ).fetchone()
            if busy:
                raise AgreementInUse(agreement_id)
            db.execute(
                "INSERT INTO jobs (job_id, owner, provider, agreement_id, environment, status, "
                "status_text, date_created, deadline, workflow, algo_did, input_dids) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    job_id,
                    owner,
                    provider,
                    agreement_id,
                    environment,
                    JobStatus.WARMING_UP,
                    JobStatus.WARMING_UP.text,
                    now,
                    now + queue_seconds,
                    json.dumps(workflow),
                    algo_did,
                    json.dumps(list(input_dids)),
                ),
            )
            row = db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _record(row).job  # as queued: the scheduler may claim it at once

    def get(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
        return _record(row) if row else None

    def find(
        self, owner: str, job_id: str | None = None, agreement_id: str | None = None
    ) -> list[JobRecord]:
        query, args = "SELECT * FROM jobs WHERE owner = ?", [owner]
        if job_id:
            query, args = query + " AND job_id = ?", [*args, job_id]
        if agreement_id:
            query, args = query + " AND agreement_id = ?", [*args, agreement_id]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY date_created", args).fetchall()
        return [_record(row) for row in rows]

    def claim_next(self, environment: str, max_running: int, deadline: float) -> str | None:
        """Take the oldest queued job of ``environment`` if fewer than ``max_running`` run."""
        with self._tx() as db:
            running = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE environment = ? "
                "AND status IN (10, 20, 30, 40, 50, 60)",
                (environment,),
            ).fetchone()[0]
            if running >= max_running:
                return None
            row = db.execute(
                "SELECT job_id FROM jobs WHERE environment = ? AND status = ? AND stopreq = 0 "
                "ORDER BY date_created LIMIT 1",
                (environment, JobStatus.WARMING_UP),
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = ?, status_text = ?, deadline = ? WHERE job_id = ?",
                (JobStatus.STARTED, JobStatus.STARTED.text, deadline, row[0]),
            )
            return str(row[0])

    def advance(self, job_id: str, status: JobStatus, deadline: float | None = None) -> bool:
        """Move a live job to a non-terminal state; False if it already ended.

        Not synced to disk at once (see the module note): a power cut may undo it.
        """
        with self._tx("NORMAL") as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, status_text = ?, deadline = COALESCE(?, deadline) "
                f"WHERE job_id = ? AND status IN ({','.join('?' * len(ACTIVE))})",
                (status, status.text, deadline, job_id, *ACTIVE),
            )
            return cursor.rowcount == 1

    def finish(
        self,
        job_id: str,
        status: JobStatus,
        detail: str = "",
        results: Sequence[StoredResult] = (),
        *,
        only_from: Sequence[int] = ACTIVE,
    ) -> bool:
        """End a job in one of ``only_from`` (default: any live state) once.

        The first terminal state wins. The job's files expire after its
        environment's retention, and the workflow loses its file objects
        (decrypted URLs and headers are needed only while provisioning).
        """
        text = f"{status.text}: {detail}" if detail else status.text
        payload = json.dumps([{**r.result.model_dump(), "path": r.path} for r in results])
        now = time.time()
        with self._tx() as db:
            row = db.execute(
                "SELECT environment, workflow FROM jobs WHERE job_id = ?", (job_id,)
            ).fetchone()
            if row is None:
                return False
            expires = now + self._retention.get(row[0], DEFAULT_RETENTION)
            cursor = db.execute(
                "UPDATE jobs SET status = ?, status_text = ?, date_finished = ?, results = ?, "
                "expires = ?, workflow = ? "
                f"WHERE job_id = ? AND status IN ({','.join('?' * len(only_from))})",
                (status, text, now, payload, expires, _redacted(row[1]), job_id, *only_from),
            )
            return cursor.rowcount == 1

    def finish_if_queued(self, job_id: str) -> bool:
        """A queued job that is asked to stop ends at once (7)."""
        return self.finish(job_id, JobStatus.STOPPED, only_from=(JobStatus.WARMING_UP,))

    def request_stop(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET stopreq = 1 WHERE job_id = ?", (job_id,))

    def delete(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    def active(self) -> list[tuple[str, int, float, int]]:
        """(job_id, status, deadline, stopreq) of every non-terminal job."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT job_id, status, deadline, stopreq FROM jobs "
                f"WHERE status IN ({','.join('?' * len(ACTIVE))})",
                ACTIVE,
            ).fetchall()
        return [(str(r[0]), int(r[1]), float(r[2]), int(r[3])) for r in rows]

    def counts(self) -> list[tuple[str, int, int]]:
        """(environment, status, how many jobs) of every pair that has jobs."""
        with self._lock:
            rows = self._db.execute(
                "SELECT environment, status, COUNT(*) FROM jobs GROUP BY environment, status"
            ).fetchall()
        return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]

    def running_count(self, environment: str) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT COUNT(*) FROM jobs WHERE environment = ? "
                    "AND status IN (10, 20, 30, 40, 50, 60)",
                    (environment,),
                ).fetchone()[0]
            )

    def expired(self, now: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT job_id FROM jobs WHERE expires IS NOT NULL AND expires < ?", (now,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def forget_results(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE jobs SET results = '[]', expires = NULL WHERE job_id = ?", (job_id,))

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _record(row: Sequence[Any]) -> JobRecord:
    (
        job_id,
        owner,
        provider,
        agreement_id,
        environment,
        status,
        status_text,
        created,
        finished,
        deadline,
        stopreq,
        workflow,
        results,
        algo_did,
        input_dids,
        expires,
    ) = row
    stored = [
        StoredResult(ResultFile.model_validate(item), item["path"]) for item in json.loads(results)
    ]
    job = OperatorJob(
        jobId=job_id,
        owner=owner,
        agreementId=agreement_id,
        status=status,
        statusText=status_text,
        dateCreated=created,
        dateFinished=finished,
        expireTimestamp=expires,
        results=[s.result for s in stored],
        stopreq=stopreq,
        algoDID=algo_did,
        inputDID=json.loads(input_dids),
        environment=environment,
    )
    return JobRecord(job, provider, json.loads(workflow), float(deadline), stored)


def _redacted(workflow_json: str) -> str:
    """The stored workflow without file objects or algorithm URL."""
    workflow = json.loads(workflow_json)
    for stage in workflow.get("stages", []):
        for item in stage.get("input", []):
            item["files"] = []
        algorithm = stage.get("algorithm", {})
        algorithm["files"], algorithm["url"] = [], ""
    return json.dumps(workflow)


def is_terminal(status: int) -> bool:
    try:
        return JobStatus(status) in TERMINAL
    except ValueError:
        return False

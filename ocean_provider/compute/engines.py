"""Several engines behind one Provider: their environments merged, each job on its engine.

``EngineRouter`` is a ``ComputeBackend`` over named engines (``OPERATOR_SERVICES``):

- Environments: every engine's list, merged; each environment carries ``reachable``. An
  engine that does not answer keeps the environments it last announced (to this worker),
  marked ``"reachable": false``; the service refuses to price or start jobs there. An id
  announced by two engines names neither: it is left out and logged as the configuration
  error it is.
- Jobs: a start goes to the engine that announced its environment. The job id handed out is
  ``<engine name>-<the engine's id>``, so every later call finds the engine from the id alone
  (no table to share between workers or hosts) and the engine sees its own id. An id without
  a configured engine's name (a job from before the engines had names) is looked for on each.
- A down engine: calls for its jobs are 503 ``operator_unavailable``. After a failure the
  router answers that without asking it for ``RETRY_SECONDS``; then one call asks again
  (the others still get 503 until it has its answer), so at most one request per pause
  waits on an engine that does not answer. Listing jobs skips it; stopping or deleting
  without a job id refuses while it is down (they would leave its jobs running or stored).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ocean_provider.compute.interfaces import ComputeBackend, ResultStream
from ocean_provider.errors import (
    EnvironmentNotFound,
    JobNotFound,
    OperatorFailed,
    OperatorUnavailable,
    ProviderError,
)
from ocean_provider.wire.jobs import OperatorJob

log = logging.getLogger(__name__)
SEPARATOR = "-"  # engine names never contain it; the engine's own id may
RETRY_SECONDS = 10.0  # after a failure, an engine is not asked again for this long (per worker)
T = TypeVar("T")


@dataclass
class _Engine:
    name: str
    backend: ComputeBackend
    down_until: float = 0.0
    announced: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # per chain


class EngineRouter:
    def __init__(
        self,
        engines: Mapping[str, ComputeBackend],
        *,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not engines:
            raise ValueError("EngineRouter needs at least one engine")
        self._engines = {name: _Engine(name, backend) for name, backend in engines.items()}
        self._retry = retry_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._routes: dict[tuple[int, str], _Engine] = {}  # (chain, environment id) -> engine
        self._conflicts: set[tuple[int, str]] = set()  # logged once each

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        listings = [(engine, *self._announced(engine, chain_id)) for engine in self._all()]
        if not any(reachable or envs for _, envs, reachable in listings):
            raise OperatorUnavailable("no compute engine answered")
        owners: dict[str, list[str]] = {}  # environment id -> the engines announcing it
        for engine, envs, _ in listings:
            for env_id in dict.fromkeys(str(env.get("id", "")) for env in envs):
                owners.setdefault(env_id, []).append(engine.name)
        merged, routes = [], {}
        for engine, envs, reachable in listings:
            for env in envs:
                env_id = str(env.get("id", ""))
                if len(owners[env_id]) > 1:
                    self._conflict(chain_id, env_id, owners[env_id])
                    continue
                merged.append({**env, "reachable": reachable})
                routes[(chain_id, env_id)] = engine
        with self._lock:
            kept = {key: e for key, e in self._routes.items() if key[0] != chain_id}
            self._routes = {**kept, **routes}
        return merged

    def start(self, owner: str, payload: Mapping[str, Any]) -> list[OperatorJob]:
        engine = self._engine_for(int(payload.get("chainId", 0)), str(payload.get("environment")))
        jobs = self._call(engine, lambda b: b.start(owner, payload))
        return _named(engine, jobs)

    def status(
        self, owner: str, job_id: str | None = None, document_id: str | None = None
    ) -> list[OperatorJob]:
        if job_id:
            return self._on_job(owner, job_id, lambda b, j: b.status(owner, j, document_id))
        listed, answered = [], False
        for engine in self._all():
            try:
                jobs = self._call(engine, lambda b: b.status(owner, None, document_id))
            except OperatorUnavailable:
                log.warning("engine %s is unreachable: its jobs are left out", engine.name)
                continue
            answered = True
            listed += _named(engine, jobs)
        if not answered:
            raise OperatorUnavailable("no compute engine answered")
        return listed

    def stop(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        return self._each(owner, job_id, lambda b, j: b.stop(owner, j, document_id))

    def delete(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        return self._each(owner, job_id, lambda b, j: b.delete(owner, j, document_id))

    def result(self, owner: str, job_id: str, index: int, range_header: str | None) -> ResultStream:
        engine, engine_job, _ = self._find(owner, job_id)
        return self._call(engine, lambda b: b.result(owner, engine_job, index, range_header))

    def _each(
        self,
        owner: str,
        job_id: str | None,
        act: Callable[[ComputeBackend, str | None], list[OperatorJob]],
    ) -> list[OperatorJob]:
        """Stop or delete: the named job on its engine, or the owner's jobs on every engine
        (refused while one is down, so none of its jobs is silently left out)."""
        if job_id:
            return self._on_job(owner, job_id, act)
        engines = self._all()
        down = [engine.name for engine in engines if self._is_down(engine)]
        if down:
            raise OperatorUnavailable(f"compute engine {down[0]!r} is unreachable; name a jobId")
        done: list[OperatorJob] = []
        for engine in engines:
            done += _named(engine, self._call(engine, lambda b: act(b, None)))
        return done

    def _on_job(
        self,
        owner: str,
        job_id: str,
        act: Callable[[ComputeBackend, str], list[OperatorJob]],
    ) -> list[OperatorJob]:
        """``act`` on the job's engine with the engine's id for it; the jobs with the ids
        the caller knows (named, unless it asked by an id from before the names)."""
        engine, engine_job, public = self._find(owner, job_id)
        jobs = self._call(engine, lambda b: act(b, engine_job))
        return _named(engine, jobs) if public != engine_job else jobs

    def _find(self, owner: str, job_id: str) -> tuple[_Engine, str, str]:
        """The job's engine, the engine's id for it, and the id the caller knows."""
        name, separator, engine_job = job_id.partition(SEPARATOR)
        engine = self._engines.get(name)
        if separator and engine_job and engine is not None:
            return engine, engine_job, job_id
        unreachable = False  # an id from before the engines had names: ask each
        for engine in self._all():
            try:
                if self._call(engine, lambda b: b.status(owner, job_id, None)):
                    return engine, job_id, job_id
            except JobNotFound:
                continue
            except OperatorUnavailable:
                unreachable = True
        if unreachable:
            raise OperatorUnavailable("a compute engine is unreachable; the job may be there")
        raise JobNotFound("no such job for this consumer")

    def _engine_for(self, chain_id: int, env_id: str) -> _Engine:
        engine = self._routes.get((chain_id, env_id))
        if engine is None:
            self.environments(chain_id)
            engine = self._routes.get((chain_id, env_id))
        if engine is None:
            raise EnvironmentNotFound(f"compute environment {env_id!r} does not exist")
        return engine

    def _announced(self, engine: _Engine, chain_id: int) -> tuple[list[dict[str, Any]], bool]:
        """The engine's environments and whether it answered now; when it did not, the
        ones it last announced (none if it never answered this worker)."""
        if self._may_ask(engine):
            try:
                envs = engine.backend.environments(chain_id)
            except (OperatorUnavailable, OperatorFailed):
                self._mark_down(engine)
            else:
                engine.down_until = 0.0
                engine.announced[chain_id] = envs
                return envs, True
        return engine.announced.get(chain_id, []), False

    def _call(self, engine: _Engine, call: Callable[[ComputeBackend], T]) -> T:
        if not self._may_ask(engine):
            raise OperatorUnavailable(f"compute engine {engine.name!r} is unreachable")
        try:
            result = call(engine.backend)
        except OperatorUnavailable:
            self._mark_down(engine)
            raise
        except ProviderError:
            engine.down_until = 0.0  # it answered, if with an error
            raise
        engine.down_until = 0.0
        return result

    def _may_ask(self, engine: _Engine) -> bool:
        """False while the engine counts as down. Once its pause is over, one caller asks it
        again and the others still get False until that one has its answer."""
        with self._lock:
            now = self._clock()
            if engine.down_until > now:
                return False
            if engine.down_until:
                engine.down_until = now + self._retry  # this caller's probe
            return True

    def _all(self) -> list[_Engine]:
        return list(self._engines.values())

    def _is_down(self, engine: _Engine) -> bool:
        return engine.down_until > self._clock()

    def _mark_down(self, engine: _Engine) -> None:
        log.warning("engine %s did not answer; asking again in %.0f s", engine.name, self._retry)
        engine.down_until = self._clock() + self._retry

    def _conflict(self, chain_id: int, env_id: str, names: list[str]) -> None:
        if (chain_id, env_id) in self._conflicts:
            return
        self._conflicts.add((chain_id, env_id))
        log.error(
            "OPERATOR_SERVICES: engines %s all announce environment %r on chain %s; an "
            "environment id must name one engine, so none of them is offered",
            ", ".join(names),
            env_id,
            chain_id,
        )


def _named(engine: _Engine, jobs: list[OperatorJob]) -> list[OperatorJob]:
    """The jobs with the ids this Provider hands out: the engine's name, then its id."""
    return [
        job.model_copy(update={"job_id": f"{engine.name}{SEPARATOR}{job.job_id}"}) for job in jobs
    ]

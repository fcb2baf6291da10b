"""Several engines behind one router: merged environments, jobs routed by their ids."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any

import pytest

from ocean_provider.compute.engines import EngineRouter
from ocean_provider.errors import EnvironmentNotFound, JobNotFound, OperatorUnavailable
from ocean_provider.wire.jobs import OperatorJob

OWNER = "0xA78deb2Fa79463945C247991075E2a0e98Ba7A09"
CHAIN = 8996
_ids = itertools.count(1)


class FakeEngine:
    """An engine in memory; ``down`` makes every call fail as an unreachable one does."""

    def __init__(self, *env_ids: str) -> None:
        self.env_ids = list(env_ids)
        self.jobs: dict[str, OperatorJob] = {}
        self.down = False
        self.calls: list[tuple[str, str | None]] = []
        self.while_asked: list[Callable[[], None]] = []  # run during the next call

    def _called(self, name: str, job_id: str | None = None) -> None:
        self.calls.append((name, job_id))
        if self.while_asked:
            self.while_asked.pop()()
        if self.down:
            raise OperatorUnavailable("compute engine unreachable")

    def environments(self, chain_id: int) -> list[dict[str, Any]]:
        self._called("environments")
        return [{"id": env_id, "desc": env_id} for env_id in self.env_ids]

    def start(self, owner: str, payload: Mapping[str, Any]) -> list[OperatorJob]:
        self._called("start")
        job_id = f"{next(_ids):032x}"
        job = OperatorJob(jobId=job_id, owner=owner, status=1, environment=payload["environment"])
        self.jobs[job_id] = job
        return [job]

    def _matching(self, owner: str, job_id: str | None) -> list[OperatorJob]:
        if job_id and job_id not in self.jobs:
            raise JobNotFound("no such job for this consumer")
        return [j for j in self.jobs.values() if j.owner == owner and job_id in (None, j.job_id)]

    def status(
        self, owner: str, job_id: str | None = None, document_id: str | None = None
    ) -> list[OperatorJob]:
        self._called("status", job_id)
        return self._matching(owner, job_id)

    def stop(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        self._called("stop", job_id)
        return [j.model_copy(update={"status": 7}) for j in self._matching(owner, job_id)]

    def delete(self, owner: str, job_id: str | None, document_id: str | None) -> list[OperatorJob]:
        self._called("delete", job_id)
        gone = self._matching(owner, job_id)
        for job in gone:
            del self.jobs[job.job_id]
        return [j.model_copy(update={"status": 8}) for j in gone]

    def result(self, owner: str, job_id: str, index: int, range_header: str | None) -> Any:
        self._called("result", job_id)
        self._matching(owner, job_id)
        return f"result {index} of {job_id}"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engines() -> dict[str, FakeEngine]:
    return {"a": FakeEngine("cpu-a", "shared"), "b": FakeEngine("cpu-b", "shared")}


@pytest.fixture
def router(engines: dict[str, FakeEngine], clock: Clock) -> EngineRouter:
    return EngineRouter(engines, retry_seconds=5, clock=clock)  # type: ignore[arg-type]


def _start(router: EngineRouter, env: str) -> OperatorJob:
    (job,) = router.start(OWNER, {"environment": env, "chainId": CHAIN})
    return job


def _ids_of(envs: list[dict[str, Any]]) -> dict[str, bool]:
    return {env["id"]: env["reachable"] for env in envs}


def test_environments_are_merged_and_an_id_two_engines_announce_is_left_out(
    router: EngineRouter, caplog: pytest.LogCaptureFixture
) -> None:
    assert _ids_of(router.environments(CHAIN)) == {"cpu-a": True, "cpu-b": True}
    assert "engines a, b all announce environment 'shared'" in caplog.text
    router.environments(CHAIN)
    assert caplog.text.count("all announce") == 1  # logged once, not on every listing
    with pytest.raises(EnvironmentNotFound):
        _start(router, "shared")


def test_each_job_goes_to_its_environments_engine_and_its_id_names_it(
    router: EngineRouter, engines: dict[str, FakeEngine]
) -> None:
    on_a, on_b = _start(router, "cpu-a"), _start(router, "cpu-b")
    assert on_a.job_id.startswith("a-") and on_b.job_id.startswith("b-")
    assert list(engines["a"].jobs) == [on_a.job_id[2:]] and list(engines["b"].jobs) == [
        on_b.job_id[2:]
    ]
    (status,) = router.status(OWNER, on_b.job_id)
    assert status.job_id == on_b.job_id and engines["b"].calls[-1] == ("status", on_b.job_id[2:])
    assert router.result(OWNER, on_a.job_id, 1, None) == f"result 1 of {on_a.job_id[2:]}"
    (stopped,) = router.stop(OWNER, on_a.job_id, None)
    assert (stopped.job_id, stopped.status) == (on_a.job_id, 7)
    (deleted,) = router.delete(OWNER, on_b.job_id, None)
    assert (deleted.job_id, deleted.status) == (on_b.job_id, 8) and not engines["b"].jobs
    with pytest.raises(EnvironmentNotFound):
        _start(router, "gpu")


def test_listing_without_a_job_id_spans_every_engine(router: EngineRouter) -> None:
    started = {_start(router, "cpu-a").job_id, _start(router, "cpu-b").job_id}
    assert {job.job_id for job in router.status(OWNER)} == started
    assert {job.status for job in router.stop(OWNER, None, None)} == {7}
    assert {job.job_id for job in router.delete(OWNER, None, None)} == started
    assert router.status(OWNER) == []


def test_a_down_engine_takes_only_its_own_environments_and_jobs(
    router: EngineRouter, engines: dict[str, FakeEngine], clock: Clock
) -> None:
    on_a, on_b = _start(router, "cpu-a"), _start(router, "cpu-b")
    engines["b"].down = True
    assert _ids_of(router.environments(CHAIN)) == {"cpu-a": True, "cpu-b": False}
    for call in (
        lambda: router.status(OWNER, on_b.job_id),
        lambda: router.stop(OWNER, on_b.job_id, None),
        lambda: router.delete(OWNER, on_b.job_id, None),
        lambda: router.result(OWNER, on_b.job_id, 0, None),
        lambda: _start(router, "cpu-b"),
        lambda: router.stop(OWNER, None, None),  # would leave b's jobs running
    ):
        with pytest.raises(OperatorUnavailable):
            call()
    assert [job.job_id for job in router.status(OWNER)] == [on_a.job_id]
    assert router.status(OWNER, on_a.job_id)[0].job_id == on_a.job_id
    assert _start(router, "cpu-a").job_id.startswith("a-")
    asked = len(engines["b"].calls)
    with pytest.raises(OperatorUnavailable):
        router.status(OWNER, on_b.job_id)
    assert len(engines["b"].calls) == asked  # not asked again while it counts as down

    engines["b"].down = False
    clock.now += 5
    assert router.status(OWNER, on_b.job_id)[0].job_id == on_b.job_id
    assert _ids_of(router.environments(CHAIN)) == {"cpu-a": True, "cpu-b": True}


def test_no_engine_answering_is_unavailable(
    router: EngineRouter, engines: dict[str, FakeEngine]
) -> None:
    for engine in engines.values():
        engine.down = True
    for call in (lambda: router.environments(CHAIN), lambda: router.status(OWNER)):
        with pytest.raises(OperatorUnavailable):
            call()


def test_an_engine_down_since_boot_lists_nothing_until_it_answers(
    engines: dict[str, FakeEngine], clock: Clock
) -> None:
    engines["b"].down = True
    router = EngineRouter(engines, retry_seconds=5, clock=clock)  # type: ignore[arg-type]
    # b's environments are unknown to this worker: a's "shared" has no rival until b answers
    assert _ids_of(router.environments(CHAIN)) == {"cpu-a": True, "shared": True}
    clock.now += 5
    engines["b"].down = False
    assert _ids_of(router.environments(CHAIN)) == {"cpu-a": True, "cpu-b": True}


def test_an_id_without_an_engine_name_is_looked_for_on_each_engine(
    router: EngineRouter, engines: dict[str, FakeEngine]
) -> None:
    """Jobs started before the engines had names keep their bare ids."""
    bare = _start(router, "cpu-b").job_id[2:]
    (job,) = router.status(OWNER, bare)
    assert job.job_id == bare
    assert router.delete(OWNER, bare, None)[0].job_id == bare and not engines["b"].jobs
    with pytest.raises(JobNotFound):
        router.status(OWNER, "c-" + bare)
    engines["a"].down = True
    with pytest.raises(OperatorUnavailable):  # it may be on the engine that is down
        router.status(OWNER, bare)


def test_after_the_pause_one_call_asks_a_down_engine_again_and_the_others_do_not_wait(
    router: EngineRouter, engines: dict[str, FakeEngine], clock: Clock
) -> None:
    on_b = _start(router, "cpu-b")
    engines["b"].down = True
    with pytest.raises(OperatorUnavailable):
        router.status(OWNER, on_b.job_id)
    clock.now += 5
    meanwhile: list[str] = []

    def another_call() -> None:
        try:
            router.status(OWNER, on_b.job_id)
        except OperatorUnavailable as refused:
            meanwhile.append(refused.message)

    engines["b"].while_asked.append(another_call)
    asked = len(engines["b"].calls)
    with pytest.raises(OperatorUnavailable):
        router.status(OWNER, on_b.job_id)
    assert meanwhile == ["compute engine 'b' is unreachable"]
    assert len(engines["b"].calls) == asked + 1  # the probe only

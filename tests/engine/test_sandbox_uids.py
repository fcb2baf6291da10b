"""Each running job has a host uid of its own: leases, and two jobs running at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from ocean_provider.devnet.embedded import EmbeddedEngine
from ocean_provider.engine.sandbox import SandboxError
from ocean_provider.engine.sandbox.uids import FIRST_UID, UID_COUNT, SandboxUids
from tests.engine import jobs


def test_leases_are_distinct_and_released(tmp_path: Path) -> None:
    uids = SandboxUids(first=5000, count=3, lease_dir=tmp_path)
    with uids.lease() as first, uids.lease() as second:
        assert (first, second) == (5000, 5001)
    with uids.lease() as again:
        assert again == 5000


def test_engines_sharing_a_host_never_share_a_uid(tmp_path: Path) -> None:
    engine_a = SandboxUids(first=5000, count=2, lease_dir=tmp_path)
    engine_b = SandboxUids(first=5000, count=2, lease_dir=tmp_path)
    with engine_a.lease() as a, engine_b.lease() as b:
        assert a != b
        with pytest.raises(SandboxError, match="all 2 sandbox uids are in use"):
            with engine_a.lease():
                pass


@pytest.mark.parametrize(("first", "count"), [(0, 10), (5000, 0), (2**31 - 5, 10)])
def test_bad_ranges_are_refused(tmp_path: Path, first: int, count: int) -> None:
    with pytest.raises(ValueError):
        SandboxUids(first, count, tmp_path)


UID_WRITER = """
import os, time
open("/data/outputs/uid.txt", "w").write(f"{os.getuid()} {os.getgid()}")
time.sleep(1.5)  # both jobs run at once
"""


@pytest.mark.integration
def test_two_running_jobs_get_different_uids(running_engine: EmbeddedEngine, data_url: str) -> None:
    client = running_engine.client  # the environment runs 2 jobs at once
    job_ids = [jobs.submit(client, UID_WRITER, data_url) for _ in range(2)]
    finished = [jobs.wait(client, job_id, timeout=30) for job_id in job_ids]

    assert [job.status for job in finished] == [70, 70]
    outputs = [running_engine.context.scheduler.job_dir(j) / "data" / "outputs" for j in job_ids]
    ids = [tuple(int(n) for n in (o / "uid.txt").read_text().split()) for o in outputs]
    assert ids[0] != ids[1]  # a uid is reused once free: they overlapped and still differ
    for (uid, gid), directory in zip(ids, outputs, strict=True):
        assert uid == gid and FIRST_UID <= uid < FIRST_UID + UID_COUNT
        assert (directory.stat().st_uid, (directory / "uid.txt").stat().st_uid) == (uid, uid)

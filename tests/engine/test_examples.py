"""The README's engine demo runs as documented and its job completes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_engine_demo_runs_a_job_to_completion() -> None:
    demo = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "engine_demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert demo.returncode == 0, demo.stderr[-2000:]
    assert "status 70  Job completed" in demo.stdout
    assert '"sum": 55.0' in demo.stdout
    assert "read 10 numbers" in demo.stdout

"""The folder gunicorn's workers share their metric values through (prometheus-client's
multiprocess mode), one per run of ``ocean-provider serve`` or ``engine``.

With ``PROMETHEUS_MULTIPROC_DIR`` set, it is that folder's ``provider`` or ``engine`` subfolder
(so the two servers may share one setting), emptied of the last run's values at start;
otherwise each run makes a fresh temporary folder and removes it at exit. The master sets the
variable for its workers before they fork: prometheus-client reads it when first imported, and
the workers' settings (``Observability.metrics_dir``) then name the same folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ENVIRONMENT_NAME = "PROMETHEUS_MULTIPROC_DIR"


def prepare_metrics_dir(configured: Path | None, name: str) -> Callable[[Any, Any], None]:
    """Make this run's folder for server ``name`` and hand it to the workers; gunicorn's
    ``child_exit`` hook, which marks a dead worker's live gauges gone, is the result."""
    if configured is None:
        folder = Path(tempfile.mkdtemp(prefix=f"ocean-{name}-metrics-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    else:
        folder = configured / name
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):  # the last run's workers' values
            stale.unlink()
    os.environ[ENVIRONMENT_NAME] = str(folder)

    def forget_worker(server: Any, worker: Any) -> None:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid, str(folder))  # type: ignore[no-untyped-call]

    return forget_worker

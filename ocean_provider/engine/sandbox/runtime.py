"""Where a runtime (an interpreter installed on the host) appears inside the sandbox.

An install outside the system dirs (a pyenv Python under /root, say) is mounted
read-only at ``/opt/runtime/<name>``, so no host home folder appears inside. Its
executable is addressed there, and its ``lib`` folder goes on LD_LIBRARY_PATH:
an interpreter linked with an absolute RUNPATH (pyenv's libpython) finds its
shared libraries only through it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ocean_provider.engine.sandbox.types import RUNTIME_ROOT, RuntimeMount

UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class PlacedRuntime:
    """A runtime as the sandbox sees it."""

    mounts: tuple[RuntimeMount, ...]
    executable: str
    library_dirs: tuple[str, ...]

    def env(self) -> dict[str, str]:
        """What the job's environment needs for the runtime to load."""
        if not self.library_dirs:
            return {}
        return {"LD_LIBRARY_PATH": ":".join(self.library_dirs)}


def place_runtime(name: str, executable: str, host_dirs: Sequence[str]) -> PlacedRuntime:
    """Mount ``host_dirs`` at ``/opt/runtime/<name>`` (``<name>-2``, ... for more)."""
    mounts = tuple(
        RuntimeMount(Path(directory), RUNTIME_ROOT / _mount_name(name, index))
        for index, directory in enumerate(host_dirs)
    )
    libraries = tuple(str(m.target / "lib") for m in mounts if (m.source / "lib").is_dir())
    return PlacedRuntime(mounts, _inside(Path(executable), mounts), libraries)


def _mount_name(name: str, index: int) -> str:
    safe = UNSAFE.sub("_", name).strip(".") or "runtime"
    return safe if index == 0 else f"{safe}-{index + 1}"


def _inside(path: Path, mounts: Sequence[RuntimeMount]) -> str:
    """``path`` as seen inside: under its mount's target, or unchanged (system dirs)."""
    for mount in mounts:
        if path.is_relative_to(mount.source):
            return str(mount.target / path.relative_to(mount.source))
    return str(path)

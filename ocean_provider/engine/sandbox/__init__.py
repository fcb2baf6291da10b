"""The bubblewrap sandbox one job's algorithm runs in.

- ``run``: ``SandboxRun``, one algorithm command from launch to outcome;
- ``setup``: host checks, spec validation, the data folder;
- ``bwrap``: the bwrap command line (namespaces, mounts, setpriv);
- ``seccomp``: the syscall filter; ``limits``: cgroups, rlimits, output size;
- ``uids``: a host uid per running job; ``runtime``: interpreters mounted inside;
- ``types``: the value types they share.
"""

from ocean_provider.engine.sandbox.run import SandboxRun, sandbox_available
from ocean_provider.engine.sandbox.setup import SandboxHost
from ocean_provider.engine.sandbox.types import (
    SandboxError,
    SandboxLimits,
    SandboxOutcome,
    SandboxSpec,
)

__all__ = [
    "SandboxError",
    "SandboxHost",
    "SandboxLimits",
    "SandboxOutcome",
    "SandboxRun",
    "SandboxSpec",
    "sandbox_available",
]

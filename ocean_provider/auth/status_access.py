"""Who may read a job's status without signing: the ``STATUS_ACCESS`` setting.

``signed``: only signed requests. ``job-id`` (the default): an unsigned request
must name the owner's address and the job id, the 122-bit capability only the
owner was handed, and gets that one job; listing an address's jobs or filtering
by documentId needs a signature. ``open``: the reference Provider's behaviour,
unsigned listing by address, for marketplaces that show jobs unsigned. A request
that carries a signature is always checked, whatever the setting.
"""

from __future__ import annotations

from enum import StrEnum

from ocean_provider.errors import SignatureMissing


class StatusAccess(StrEnum):
    SIGNED = "signed"
    JOB_ID = "job-id"
    OPEN = "open"


def check_unsigned_status(
    access: StatusAccess, job_id: str | None, document_id: str | None
) -> None:
    """Refuse an unsigned status request this setting does not let through."""
    if access is StatusAccess.OPEN:
        return
    if access is StatusAccess.SIGNED:
        raise SignatureMissing("This Provider answers signed status requests only.")
    if not job_id or document_id:
        raise SignatureMissing(
            "Without a signature, give consumerAddress and jobId (listing jobs or "
            "filtering by documentId needs a signed request)."
        )

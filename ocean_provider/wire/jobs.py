"""The Operator-Service wire contract: job status codes and the job objects engines return.

Both our Provider (parsing replies) and our local engine (producing them) use
these, so the two sides cannot drift apart. Parsing is lenient where Ocean's
own Operator-Service is loose (dates as strings, ``results`` as ``""``).
"""

from __future__ import annotations

import math
from enum import IntEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# An environment announcing this as true runs on an engine that takes each input's decrypted
# files in the workflow (our local engine); Ocean's engine fetches them through the Provider
ACCEPTS_FILES = "acceptsDecryptedFiles"


class JobStatus(IntEnum):
    WARMING_UP = 1
    STOPPED = 7
    DELETED = 8
    STARTED = 10
    CONFIGURING = 20
    PROVISIONED = 30
    DATA_PROVISIONING_FAILED = 31
    ALGORITHM_PROVISIONING_FAILED = 32
    RUNNING = 40
    ALGORITHM_FAILED = 41
    TIMED_OUT = 42
    FILTERING = 50
    PUBLISHING = 60
    COMPLETED = 70

    @property
    def text(self) -> str:
        return STATUS_TEXT[self]

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


STATUS_TEXT: dict[JobStatus, str] = {
    JobStatus.WARMING_UP: "Warming up",
    JobStatus.STOPPED: "Job stopped",
    JobStatus.DELETED: "Job deleted successfully",
    JobStatus.STARTED: "Job started",
    JobStatus.CONFIGURING: "Configuring volumes",
    JobStatus.PROVISIONED: "Provisioning success",
    JobStatus.DATA_PROVISIONING_FAILED: "Data provisioning failed",
    JobStatus.ALGORITHM_PROVISIONING_FAILED: "Algorithm provisioning failed",
    JobStatus.RUNNING: "Running algorithm",
    JobStatus.ALGORITHM_FAILED: "Algorithm failed",
    JobStatus.TIMED_OUT: "Job timed out",
    JobStatus.FILTERING: "Filtering results",
    JobStatus.PUBLISHING: "Publishing results",
    JobStatus.COMPLETED: "Job completed",
}

TERMINAL = frozenset(
    {
        JobStatus.STOPPED,
        JobStatus.DELETED,
        JobStatus.DATA_PROVISIONING_FAILED,
        JobStatus.ALGORITHM_PROVISIONING_FAILED,
        JobStatus.ALGORITHM_FAILED,
        JobStatus.TIMED_OUT,
        JobStatus.COMPLETED,
    }
)

RESULT_TYPES = ("output", "algorithmLog", "configurationLog")

# Bounds on what an engine may report; a reply outside them is unreadable (502).
MAX_STATUS = 999  # Ocean's codes are two digits; ocean-node's stay below 100 too
LATEST_DATE = 4_102_444_800.0  # 2100-01-01, in epoch seconds
MAX_TEXT = 1024
MAX_RESULTS = 10_000

Text = Annotated[str, Field(max_length=MAX_TEXT)]


class ResultFile(BaseModel):
    """One downloadable result; ``index`` is what getResult takes."""

    model_config = ConfigDict(extra="ignore")

    index: Annotated[int, Field(ge=0, le=MAX_RESULTS)]
    filename: Annotated[str, Field(max_length=4096)]
    filesize: Annotated[int, Field(ge=0, le=2**53)] = 0
    type: Annotated[str, Field(max_length=64)] = "output"


def _epoch(value: Any) -> float | None:
    """Epoch seconds (Ocean sends them as text); finite and between 1970 and 2100."""
    if value in (None, "", "null"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("a date must be epoch seconds")
    if isinstance(value, str) and len(value) > 32:
        raise ValueError("a date must be epoch seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or not 0 <= seconds <= LATEST_DATE:
        raise ValueError("a date must be epoch seconds between 1970 and 2100")
    return seconds


class OperatorJob(BaseModel):
    """A job as an engine reports it (ours, or Ocean's Operator-Service)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    job_id: str = Field(alias="jobId", min_length=1, max_length=256)
    owner: str = Field(max_length=64)
    agreement_id: str = Field(default="", alias="agreementId", max_length=256)
    status: int = Field(ge=0, le=MAX_STATUS)
    status_text: Text = Field(default="", alias="statusText")
    date_created: float | None = Field(default=None, alias="dateCreated")
    date_finished: float | None = Field(default=None, alias="dateFinished")
    expire_timestamp: float | None = Field(default=None, alias="expireTimestamp")
    results: list[ResultFile] = Field(default_factory=list, max_length=MAX_RESULTS)
    stopreq: int = Field(default=0, ge=0, le=9)
    algo_did: Text = Field(default="", alias="algoDID")
    input_dids: list[Text] = Field(default_factory=list, alias="inputDID", max_length=64)
    environment: Text = ""

    @field_validator("date_created", "date_finished", "expire_timestamp", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> float | None:
        return _epoch(value)

    @field_validator("results", mode="before")
    @classmethod
    def _results(cls, value: Any) -> Any:
        if value in (None, ""):
            return []
        if isinstance(value, list):
            return [
                {"index": i, **item} if isinstance(item, dict) and "index" not in item else item
                for i, item in enumerate(value)
            ]
        return value

    @field_validator("input_dids", mode="before")
    @classmethod
    def _inputs(cls, value: Any) -> Any:
        if value in (None, ""):
            return []
        return [value] if isinstance(value, str) else value

    @property
    def document_id(self) -> str:
        return self.input_dids[0] if self.input_dids else ""

    def wire(self) -> dict[str, Any]:
        """The engine's reply form (what Ocean's Operator-Service sends, plus ``index``)."""
        return {
            "agreementId": self.agreement_id,
            "jobId": self.job_id,
            "owner": self.owner,
            "status": self.status,
            "statusText": self.status_text,
            "dateCreated": self.date_created,
            "dateFinished": self.date_finished,
            "expireTimestamp": self.expire_timestamp,
            "results": [r.model_dump() for r in self.results],
            "stopreq": self.stopreq,
            "removed": 0,
            "algoDID": self.algo_did,
            "inputDID": self.input_dids,
            "environment": self.environment,
        }

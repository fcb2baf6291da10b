"""The Operator-Service wire contract: job status codes and the job objects engines return.

Both our Provider (parsing replies) and our local engine (producing them) use
these, so the two sides cannot drift apart. Parsing is lenient where Ocean's
own Operator-Service is loose (dates as strings, ``results`` as ``""``).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


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


class ResultFile(BaseModel):
    """One downloadable result; ``index`` is what getResult takes."""

    model_config = ConfigDict(extra="ignore")

    index: int
    filename: str
    filesize: int = 0
    type: str = "output"


def _epoch(value: Any) -> float | None:
    if value in (None, "", "null"):
        return None
    return float(value)


class OperatorJob(BaseModel):
    """A job as an engine reports it (ours, or Ocean's Operator-Service)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    job_id: str = Field(alias="jobId")
    owner: str
    agreement_id: str = Field(default="", alias="agreementId")
    status: int
    status_text: str = Field(default="", alias="statusText")
    date_created: float | None = Field(default=None, alias="dateCreated")
    date_finished: float | None = Field(default=None, alias="dateFinished")
    results: list[ResultFile] = Field(default_factory=list)
    stopreq: int = 0
    algo_did: str = Field(default="", alias="algoDID")
    input_dids: list[str] = Field(default_factory=list, alias="inputDID")
    environment: str = ""

    @field_validator("date_created", "date_finished", mode="before")
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
            "results": [r.model_dump() for r in self.results],
            "stopreq": self.stopreq,
            "removed": 0,
            "algoDID": self.algo_did,
            "inputDID": self.input_dids,
            "environment": self.environment,
        }

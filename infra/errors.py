"""The one error hierarchy. Every error says what went wrong, in what context, and how to fix it.

HTTP-facing errors carry their status; the API renders them all in one JSON shape
(``{"error": {"status", "code", "message", "hint"}}``), pinned by ``tests/serving/test_errors.py``.
"""

from __future__ import annotations


class CityhubError(Exception):
    """Root of every error cityhub raises on purpose."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, hint: str = "", status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} (hint: {self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, object]:
        return {"status": self.status, "code": self.code, "message": self.message, "hint": self.hint}


class ConfigError(CityhubError):
    code = "config_error"


class CatalogError(CityhubError):
    status = 404
    code = "unknown_dataset"


class ContractError(CatalogError, ValueError):
    """A contract that contradicts itself (found when the catalog is loaded, before anything runs)."""

    status = 500
    code = "invalid_contract"


class BrokerError(CityhubError):
    code = "broker_error"


class LandingError(CityhubError):
    code = "landing_error"


class CompactionError(CityhubError):
    code = "compaction_error"


class BrokerLogWentBackwards(LandingError):
    code = "broker_log_went_backwards"


class QualityError(CityhubError):
    code = "quality_error"


class BadRequest(CityhubError):
    status = 400
    code = "bad_request"


class Forbidden(CityhubError):
    status = 403
    code = "forbidden"


class NotFound(CityhubError):
    status = 404
    code = "not_found"


class Gone(CityhubError):
    status = 410
    code = "gone"


class QueryTimeout(CityhubError):
    status = 504
    code = "query_timeout"


class PartitionRevoked(LandingError):
    code = "partition_revoked"

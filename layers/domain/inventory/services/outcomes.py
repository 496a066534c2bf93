"""What became of one queue record: applied, refused for good, or failed for now.

The services decide which it is; the handlers turn it into the queue's answer (see batch.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inventory.errors import InventoryError, TemporarilyUnavailable


@dataclass(frozen=True)
class Outcome:
    error: Exception | None = None  # None: applied (or nothing to do)
    final: bool = False  # the error can never go away (invalid, refused by a rule): no retry

    @property
    def applied(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> dict[str, Any]:
        """Why the record was not applied, as the dead-letter queue records it."""
        return reason_of(self.error) if self.error is not None else {}


APPLIED = Outcome()


def outcome_of(error: Exception, transient: tuple[type[InventoryError], ...] = (TemporarilyUnavailable,)) -> Outcome:
    """A domain error other than a `transient` one can never succeed; anything else (throttling,
    an unreachable service, a defect) may succeed when the record is delivered again."""
    final = isinstance(error, InventoryError) and not isinstance(error, transient)
    return Outcome(error, final=final)


def reason_of(error: BaseException) -> dict[str, Any]:
    if isinstance(error, InventoryError):
        return {"code": error.code, "message": error.message, "details": error.details}
    return {"code": "unexpected_error", "message": f"{type(error).__name__}: {error}", "details": []}

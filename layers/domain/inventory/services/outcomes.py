"""What became of one queue record: applied, refused for good, or failed for now.

The services decide which it is; the handlers turn it into the queue's answer (see batch.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from inventory.errors import InventoryError, TemporarilyUnavailable
from inventory.messages.dead_letters import UNEXPECTED_ERROR, Reason


@dataclass(frozen=True)
class Outcome:
    error: Exception | None = None  # None: applied (or nothing to do)
    final: bool = False  # the error can never go away (invalid, refused by a rule): no retry

    @property
    def applied(self) -> bool:
        return self.error is None

    @property
    def reason(self) -> Reason:
        """Why the record was not applied, as the dead-letter queue records it."""
        assert self.error is not None, "an applied record has no reason"
        return reason_of(self.error)


APPLIED = Outcome()


def outcome_of(error: Exception, transient: tuple[type[InventoryError], ...] = (TemporarilyUnavailable,)) -> Outcome:
    """A domain error other than a `transient` one can never succeed; anything else (throttling,
    an unreachable service, a defect) may succeed when the record is delivered again."""
    final = isinstance(error, InventoryError) and not isinstance(error, transient)
    return Outcome(error, final=final)


def reason_of(error: BaseException) -> Reason:
    if isinstance(error, InventoryError):
        return Reason(code=error.code, message=error.message, details=error.details)
    return Reason(code=UNEXPECTED_ERROR, message=f"{type(error).__name__}: {error}")

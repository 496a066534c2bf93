"""What a function's dead-letter queue holds: the record as it came, with the reason it was sent there.

Written by the SQS-fed handlers (inventory.batch) and read by the operators' command
(`python -m inventory.ops dlq`), so both agree on one shape:
`{"reason": {"code", "message", "details"}, "body": <the original SQS body, as it came>}`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictStr

from inventory.errors import InventoryError

# The reason of a failure that is not one of the domain's refusals (a defect, or a dependency that
# kept failing until the record's last delivery).
UNEXPECTED_ERROR = "unexpected_error"


class Reason(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    code: StrictStr  # stable: an InventoryError's code, or UNEXPECTED_ERROR
    message: StrictStr
    details: list[dict[str, Any]] = []  # pydantic copies it for each instance (see models.counters)


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    reason: Reason
    body: StrictStr  # exactly what the source queue delivered: what a redrive sends back


def reason_codes() -> list[str]:
    """Every code a reason can carry, in this version of the service."""
    codes = {UNEXPECTED_ERROR}
    pending: list[type[InventoryError]] = [InventoryError]
    while pending:
        kind = pending.pop()
        codes.add(kind.code)
        pending += kind.__subclasses__()
    return sorted(codes)

"""Cycle counts."""

from __future__ import annotations

from datetime import datetime

from inventory.models import CountReason, CountStatus, Frozen


class CycleCount(Frozen):
    location_id: str
    count_id: str
    reason: CountReason
    product_ids: list[str]
    status: CountStatus = CountStatus.OPEN
    content_hash: str
    opened_at: datetime
    closed_at: datetime | None = None

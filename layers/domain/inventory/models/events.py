"""The applied-event records of the events from the bus."""

from __future__ import annotations

from datetime import datetime

from inventory.models import Frozen


class EventClaim(Frozen):
    """The applied-event record of an event from the bus: the hash of its body (a delivery with
    another body is refused), and whether every line of it is applied (`done`), by the delivery
    that claimed it first (`first`) or by a later one."""

    body_hash: str
    keep_until: datetime
    done: bool = False
    first: bool = False
    done_at: datetime | None = None

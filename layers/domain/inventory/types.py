"""Annotated types that the HTTP bodies and the messages share: one definition of each rule."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StrictStr

from inventory.models import CLIENT_ID_PATTERN, LOCATION_ID_PATTERN

LocationId = Annotated[StrictStr, Field(pattern=LOCATION_ID_PATTERN)]
# Ids that clients choose for imports, counts, allocations and transactions.
ClientId = Annotated[StrictStr, Field(pattern=CLIENT_ID_PATTERN)]
# Ids that other systems choose and this service only keeps: events, shipments, orders.
ExternalId = Annotated[StrictStr, Field(min_length=1, max_length=128)]
ProductId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$")]
Quantity = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
PositiveQuantity = Annotated[StrictInt, Field(gt=0, le=1_000_000_000)]

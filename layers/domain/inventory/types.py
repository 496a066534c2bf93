"""Annotated types that the HTTP bodies and the messages share: one definition of each rule."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictInt, StrictStr

from inventory.models import CLIENT_ID_PATTERN, LOCATION_ID_PATTERN

# Text that names or identifies something holds no control character (Unicode Cc: C0, DEL, C1).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
LocationId = Annotated[StrictStr, Field(pattern=LOCATION_ID_PATTERN)]
# Ids that clients choose for imports, counts, allocations and transactions.
ClientId = Annotated[StrictStr, Field(pattern=CLIENT_ID_PATTERN)]
# Ids that other systems choose and this service only keeps: events, shipments, orders.
ExternalId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS)]
ProductId = Annotated[StrictStr, Field(min_length=1, max_length=128, pattern=NO_CONTROL_CHARACTERS)]
Quantity = Annotated[StrictInt, Field(ge=0, le=1_000_000_000)]
PositiveQuantity = Annotated[StrictInt, Field(gt=0, le=1_000_000_000)]
# A shipment's logical timestamp, and the highest one an import includes: what a signed 64-bit
# integer holds, as the ERP's and fulfilment's numbers do (DynamoDB would refuse past 38 digits).
# Written as below 2^63, which the OpenAPI document's float renders exactly (2^63 - 1 it cannot).
LogicalTimestamp = Annotated[StrictInt, Field(ge=0, lt=2**63)]

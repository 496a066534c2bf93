"""What the records that clients name by id share, beside their location (inventory transactions,
cycle counts): a page of them by id, and the pending ones listed in gsi1 by when the sweep of
abandoned requests takes them over (`keys.pending_index_keys`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.keys import PENDING_SHARDS, Key, abandoned_before, location_pk, pending_partition
from inventory.adapters.dynamodb.table import Table
from inventory.cursor import decode_cursor, encode_cursor, invalid_cursor
from inventory.types import CLIENT_ID_PATTERN, matches


def records_page(
    table: Table,
    location_id: str,
    kind: tuple[str, Callable[[str, str], Key]],
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` of the location's records of one `kind` (the prefix of their sort keys, and the
    key of a record by id), by id, after `cursor`; and the cursor of the next page (None at the end)."""
    prefix, key_of = kind
    request: dict[str, Any] = {
        "KeyConditionExpression": "#pk = :pk AND begins_with(#sk, :prefix)",
        "ExpressionAttributeNames": {"#pk": "pk", "#sk": "sk"},
        "ExpressionAttributeValues": to_ddb({":pk": location_pk(location_id), ":prefix": prefix}),
        "Limit": limit,
        "ConsistentRead": True,
    }
    if cursor:
        request["ExclusiveStartKey"] = to_ddb(key_of(location_id, _listed_after(cursor)))
    items, last = table.query(**request)
    next_cursor = encode_cursor([from_ddb(last)["sk"].removeprefix(prefix)]) if last else None
    return [from_ddb(item) for item in items], next_cursor


def pending_before(table: Table, listing: str, now: datetime, limit: int) -> list[dict[str, Any]]:
    """The records of `listing` (e.g. `keys.PENDING_COUNTS`) whose `abandon_at` is before `now`: up
    to `limit` of each gsi1 partition (read eventually consistently: the caller checks each)."""
    found: list[dict[str, Any]] = []
    for shard in range(PENDING_SHARDS):
        items, _ = table.query(
            IndexName="gsi1",
            KeyConditionExpression="#p = :p AND #s < :now",
            ExpressionAttributeNames={"#p": "gsi1pk", "#s": "gsi1sk"},
            ExpressionAttributeValues=to_ddb({":p": pending_partition(shard, listing), ":now": abandoned_before(now)}),
            Limit=limit,
        )
        found += [from_ddb(item) for item in items]
    return found


def _listed_after(cursor: str) -> str:
    """The client id a page's cursor names (422 for anything else)."""
    position = decode_cursor(cursor)
    if not (isinstance(position, list) and len(position) == 1 and isinstance(position[0], str)):
        raise invalid_cursor()
    if not matches(CLIENT_ID_PATTERN, position[0]):
        raise invalid_cursor()
    return position[0]

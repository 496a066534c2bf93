"""The table client: every DynamoDB call of the adapter goes through it.

It creates the boto3 client on first use, pages and retries what DynamoDB leaves unprocessed (by
`inventory.backoff.UNPROCESSED`), and turns `ClientError` codes into what the domain understands: a
refused condition into a None or False result (the caller decides whether it is a conflict),
throttling and outages into TemporarilyUnavailable, a write past the item size limit into
ItemTooLarge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.adapters.dynamodb.codec import from_ddb, to_ddb
from inventory.adapters.dynamodb.expressions import Update
from inventory.backoff import UNPROCESSED, retried
from inventory.errors import ItemTooLarge, TemporarilyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BATCH_WRITE_ITEMS = 25  # DynamoDB's limit per BatchWriteItem
BATCH_GET_ITEMS = 100  # and per BatchGetItem
# Items a page of a scan's Query asks for (an export reading every product of a location): a page is
# held decoded until the scan is past it, so the memory of a scan is bounded by its pages in flight,
# whatever the partition's size (a 1 MB page of small import rows is about 10,000 of them).
SCAN_PAGE_ITEMS = 1_000
_RETRYABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
}


@contextmanager
def translated() -> Iterator[None]:
    """Throttling and outages become TemporarilyUnavailable (retried by the caller or its queue); a
    write past the item size limit, which no retry fixes, ItemTooLarge."""
    try:
        yield
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in _RETRYABLE:
            raise TemporarilyUnavailable(f"DynamoDB is unavailable for now ({code})") from error
        # The one test of a message: DynamoDB gives the item size limit no code of its own (it is a
        # ValidationException, like every invalid request), only this text.
        if code == "ValidationException" and "exceeded the maximum allowed size" in str(error):
            raise ItemTooLarge("the write would take a stored record past DynamoDB's 400 KB item limit") from error
        raise
    except BotoCoreError as error:
        raise TemporarilyUnavailable(f"DynamoDB could not be reached ({type(error).__name__})") from error


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _until_processed(send: Callable[[dict[str, Any]], dict[str, Any]], pending: dict[str, Any], gave_up: str) -> None:
    """Send `pending`, then what each call leaves unprocessed (after the policy's wait), until nothing
    is left; TemporarilyUnavailable with `gave_up` when some stays unprocessed."""

    def step() -> bool | None:
        nonlocal pending
        pending = send(pending)
        return None if pending else True

    retried(step, UNPROCESSED, gave_up)


class Table:
    """One DynamoDB table, by name; its client is created on first use."""

    def __init__(self, name: str, client: DynamoDBClient | None = None) -> None:
        self.name = name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        # Created on first use, so that test fakes and local endpoints are in place by then.
        if self._client is None:
            config = Config(
                retries={"mode": "standard", "max_attempts": 8},
                connect_timeout=2,
                read_timeout=5,
                tcp_keepalive=True,
            )
            self._client = boto3.client("dynamodb", config=config)
        return self._client

    # ------------------------------------------------------------ reads
    def get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        """The item at `key`, read strongly consistently; None when there is none."""
        with translated():
            response = self.client.get_item(TableName=self.name, Key=to_ddb(key), ConsistentRead=True)
        item = response.get("Item")
        return from_ddb(item) if item else None

    def get_many(self, keys: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
        """The items found at `keys` (distinct), as DynamoDB returns them, by consistent
        BatchGetItem (100 keys each; what it leaves unprocessed is asked again)."""
        items: list[dict[str, Any]] = []

        def send(pending: dict[str, Any]) -> dict[str, Any]:
            with translated():
                response = self.client.batch_get_item(RequestItems=pending)
            items.extend(response.get("Responses", {}).get(self.name, []))
            return dict(response.get("UnprocessedKeys") or {})

        for start in range(0, len(keys), BATCH_GET_ITEMS):
            batch = {
                self.name: {"Keys": [to_ddb(k) for k in keys[start : start + BATCH_GET_ITEMS]], "ConsistentRead": True}
            }
            _until_processed(send, batch, "DynamoDB kept part of a read unprocessed; try again")
        return items

    def query(self, **request: Any) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """One page of a Query: its items as DynamoDB returns them, and its LastEvaluatedKey."""
        with translated():
            response = self.client.query(TableName=self.name, **request)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    def query_all(self, **request: Any) -> Iterator[dict[str, Any]]:
        """Every item a Query finds, page after page."""
        start: dict[str, Any] | None = None
        while True:
            items, start = self.query(**request, **({"ExclusiveStartKey": start} if start else {}))
            yield from items
            if not start:
                return

    def partition_after(self, pk: str, after_sk: str | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Up to `limit` items of partition `pk` with a sort key above `after_sk`, in key order, read
        strongly consistently; and whether more may follow."""
        names = {"#pk": "pk"}
        values: dict[str, Any] = {":pk": pk}
        condition = "#pk = :pk"
        if after_sk is not None:
            names["#sk"] = "sk"
            values[":after"] = after_sk
            condition += " AND #sk > :after"
        items, last = self.query(
            KeyConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=to_ddb(values),
            ConsistentRead=True,
            Limit=limit,
        )
        return items, last is not None

    # ------------------------------------------------------------ writes
    def update(
        self, update: Update, key: Mapping[str, str], condition: str | None = None, returns: str = "ALL_NEW"
    ) -> dict[str, Any] | None:
        """Apply; the item after (or before, with returns="ALL_OLD"), or None when the condition refused."""
        request = update.request(self.name, key, condition, ReturnValues=returns)
        try:
            with translated():
                response = self.client.update_item(**request)
        except ClientError as error:
            if _condition_failed(error):
                return None
            raise
        return from_ddb(response.get("Attributes", {}))

    def put_new(self, item: Mapping[str, Any]) -> bool:
        """Put an item that must not exist yet (its attributes that are None left out); False when it does."""
        try:
            with translated():
                self.client.put_item(
                    TableName=self.name,
                    Item=to_ddb({k: v for k, v in item.items() if v is not None}),
                    ConditionExpression="attribute_not_exists(#pk)",
                    ExpressionAttributeNames={"#pk": "pk"},
                )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def put_if(
        self, item: Mapping[str, Any], condition: str, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> bool:
        """Put `item` (its attributes that are None left out) if `condition` holds; False when it does not."""
        try:
            with translated():
                self.client.put_item(
                    TableName=self.name,
                    Item=to_ddb({k: v for k, v in item.items() if v is not None}),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=dict(names),
                    ExpressionAttributeValues=to_ddb(values),
                )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def put_unless_newer(self, item: Mapping[str, Any], attribute: str, value: int) -> bool:
        """Put `item` unless an item is there whose `attribute` is `value` or more; False then."""
        try:
            with translated():
                self.client.put_item(
                    TableName=self.name,
                    Item=to_ddb({k: v for k, v in item.items() if v is not None}),
                    ConditionExpression="attribute_not_exists(#pk) OR #a < :v",
                    ExpressionAttributeNames={"#pk": "pk", "#a": attribute},
                    ExpressionAttributeValues=to_ddb({":v": value}),
                )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def delete(
        self, key: Mapping[str, str], condition: str, names: Mapping[str, str], values: Mapping[str, Any]
    ) -> bool:
        """Delete the item at `key` if `condition` holds; False when it does not."""
        try:
            with translated():
                self.client.delete_item(
                    TableName=self.name,
                    Key=to_ddb(key),
                    ConditionExpression=condition,
                    ExpressionAttributeNames=dict(names),
                    ExpressionAttributeValues=to_ddb(values),
                )
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def write_batch(self, requests: list[dict[str, Any]], gave_up: str) -> None:
        """One BatchWriteItem (at most BATCH_WRITE_ITEMS requests), retrying what DynamoDB left
        unprocessed; TemporarilyUnavailable with `gave_up` when some stays unprocessed."""

        def send(pending: dict[str, Any]) -> dict[str, Any]:
            with translated():
                return dict(self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {})

        _until_processed(send, {self.name: requests}, gave_up)


class TableItems:
    """The base of each item module's class (Locations, Imports, Counters, ...): the items it owns
    on one table. Each works alone (a function that only needs locations builds `Locations`) or
    composed (DynamoDbRepository); those built on one Table share its client."""

    def __init__(self, table: str | Table, client: DynamoDBClient | None = None) -> None:
        self._table = table if isinstance(table, Table) else Table(table, client)

    @property
    def client(self) -> DynamoDBClient:
        """The table's boto3 client (created on first use)."""
        return self._table.client

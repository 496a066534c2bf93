"""The floor of an SQS-fed function: a partial batch response, each record parsed by one model and
applied by one DynamoDB update."""

import os
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field, Json

TABLE_NAME = os.environ["TABLE_NAME"]
dynamodb = boto3.client("dynamodb")


class Movement(BaseModel):
    product_id: str = Field(min_length=1, max_length=128)
    quantity: int = Field(ge=-1_000_000, le=1_000_000)


class MovementRecord(SqsRecordModel):
    body: Json[Movement]


processor = BatchProcessor(event_type=EventType.SQS, model=MovementRecord)


def record_handler(record: MovementRecord) -> None:
    dynamodb.update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": "bench-minimal#movements"}, "sk": {"S": record.body.product_id}},
        UpdateExpression="ADD #quantity :quantity",
        ExpressionAttributeNames={"#quantity": "quantity"},
        ExpressionAttributeValues={":quantity": {"N": str(record.body.quantity)}},
    )


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)

"""The floor of an HTTP API function: one route with a validated pydantic body, one DynamoDB write."""

import os
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, Field

TABLE_NAME = os.environ["TABLE_NAME"]
dynamodb = boto3.client("dynamodb")
app = APIGatewayHttpResolver(enable_validation=True)


class Note(BaseModel):
    text: str = Field(min_length=1, max_length=200)
    quantity: int = Field(ge=0, le=1_000_000)


@app.put("/notes/<note_id>")
def put_note(note_id: str, note: Note) -> dict[str, Any]:
    dynamodb.put_item(
        TableName=TABLE_NAME,
        Item={
            "pk": {"S": f"bench-minimal#{note_id}"},
            "sk": {"S": "note"},
            "text": {"S": note.text},
            "quantity": {"N": str(note.quantity)},
        },
    )
    return {"note_id": note_id, **note.model_dump()}


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)

"""Hands work on to a queue (the import worker's)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from inventory.errors import TemporarilyUnavailable

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


MAX_DELAY_SECONDS = 900  # SQS's limit on DelaySeconds


class SqsWorkQueue:
    def __init__(self, queue_url: str, client: SQSClient | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = boto3.client("sqs", config=Config(retries={"mode": "standard", "max_attempts": 8}))
        return self._client

    def send(self, message: dict[str, object], delay_seconds: int = 0) -> None:
        body = json.dumps(message, separators=(",", ":"))
        try:
            if delay_seconds > 0:
                delay = min(delay_seconds, MAX_DELAY_SECONDS)
                self.client.send_message(QueueUrl=self.queue_url, MessageBody=body, DelaySeconds=delay)
            else:
                self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
        except (ClientError, BotoCoreError) as error:
            raise TemporarilyUnavailable(f"the work queue refused a message ({type(error).__name__})") from error

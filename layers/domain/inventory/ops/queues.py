"""The stack's dead-letter queues, the queues their records are redriven to, and where their URLs
are found: a deployed stack's outputs, the local stack's names, or environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_sqs.client import SQSClient


@dataclass(frozen=True)
class DeadLetterQueue:
    name: str  # what --queue takes
    holds: str
    logical_id: str  # in template.yaml
    source: str | None  # the logical id of the queue that feeds its function; None: nothing to redrive to


QUEUES = {
    queue.name: queue
    for queue in (
        DeadLetterQueue("fulfillment", "shipment events", "FulfillmentDeadLetterQueue", "FulfillmentQueue"),
        DeadLetterQueue("imports", "import work and dropped files", "ImportDeadLetterQueue", "ImportQueue"),
        # Lambda's records of failed runs, and EventBridge Scheduler's of runs it could not start: the
        # next scheduled run does what a failed one did not, so there is nothing to send back.
        DeadLetterQueue("scheduled", "failed scheduled runs", "ScheduledRunsDeadLetterQueue", None),
    )
}


class QueueNotFound(LookupError):
    pass


def output_key(logical_id: str) -> str:
    """The stack output that holds the queue's URL (template.yaml, Outputs)."""
    return f"{logical_id}Url"


def environment_variable(logical_id: str) -> str:
    """FulfillmentDeadLetterQueue: FULFILLMENT_DEAD_LETTER_QUEUE_URL."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", output_key(logical_id)).upper()


def local_name(logical_id: str) -> str:
    """The local stack's name for a queue of the template (`python -m local`)."""
    return f"local-{logical_id.lower()}"


class Urls(Protocol):
    """Where queue URLs come from; QueueNotFound when this source has none for the queue."""

    def url(self, logical_id: str) -> str: ...


@dataclass
class StackOutputs:
    """A deployed stack's outputs, read once."""

    cloudformation: CloudFormationClient
    stack: str
    _outputs: dict[str, str] | None = field(default=None, init=False)

    def url(self, logical_id: str) -> str:
        if self._outputs is None:
            try:
                stacks = self.cloudformation.describe_stacks(StackName=self.stack)["Stacks"]
            except ClientError as error:
                raise QueueNotFound(f"stack {self.stack!r}: {error}") from error
            outputs = stacks[0].get("Outputs", []) if stacks else []
            self._outputs = {
                o["OutputKey"]: o["OutputValue"] for o in outputs if "OutputKey" in o and "OutputValue" in o
            }
        key = output_key(logical_id)
        if key not in self._outputs:
            raise QueueNotFound(f"stack {self.stack!r} has no output {key} (deployed before it had one?)")
        return self._outputs[key]


@dataclass
class LocalQueues:
    """The queues of the local stack, by the names it gives them."""

    sqs: SQSClient

    def url(self, logical_id: str) -> str:
        name = local_name(logical_id)
        try:
            return self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except ClientError as error:
            raise QueueNotFound(f"the local stack has no queue {name} (is it running?): {error}") from error


@dataclass
class EnvironmentUrls:
    environ: Mapping[str, str]

    def url(self, logical_id: str) -> str:
        variable = environment_variable(logical_id)
        value = self.environ.get(variable)
        if not value:
            raise QueueNotFound(f"{variable} is not set (or pass --stack NAME, --local or --queue-url)")
        return value


def source_of(sqs: SQSClient, dead_letters_url: str) -> str:
    """The one queue whose redrive policy names this dead-letter queue."""
    sources = sqs.list_dead_letter_source_queues(QueueUrl=dead_letters_url).get("queueUrls", [])
    if len(sources) != 1:
        raise QueueNotFound(
            f"{dead_letters_url} is the dead-letter queue of {len(sources)} queues by their redrive policies: "
            "name the one to send its records to with --source-queue-url"
        )
    return sources[0]

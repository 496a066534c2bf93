"""Creates, from the template, every resource the local backends can emulate. Idempotent.

Tables go to dynalite; queues, event buses, rules and buckets to moto. A function event whose
source cannot call a function locally (an EventBridge rule, an S3 notification) is given a
delivery queue of its own as the target, which `local.triggers` turns into invocations.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from local.template import ACCOUNT_ID, PARTITION, Template, text

Clients = Callable[[str], Any]  # service name -> boto3 client on the local endpoint

# Resource types with nothing to create locally (permissions, monitoring, code packaging, the API
# that local.http_api serves); anything else not created is reported.
NOTHING_TO_CREATE = (
    "AWS::Serverless::Function",
    "AWS::Serverless::LayerVersion",
    "AWS::Serverless::HttpApi",
    "AWS::Lambda::Permission",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Logs::LogGroup",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::SNS::Topic",
    "AWS::SNS::Subscription",
    "AWS::S3::BucketPolicy",
    "AWS::SQS::QueuePolicy",
    "AWS::Events::EventBusPolicy",
    "AWS::KMS::Key",
    "AWS::KMS::Alias",
)
QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
)
RULE_EVENTS = ("EventBridgeRule", "CloudWatchEvent")


def delivery_queue_name(function_id: str, event_name: str) -> str:
    """The queue that carries one function event's deliveries (rule matches, S3 notifications)."""
    return f"local-{function_id}-{event_name}".lower()[:80]


def queue_arn(template: Template, name: str) -> str:
    return f"arn:{PARTITION}:sqs:{template.region}:{ACCOUNT_ID}:{name}"


def provision(template: Template, clients: Clients) -> list[str]:
    """Create everything; returns what was not emulated, one sentence each."""
    notes: list[str] = []
    created: set[str] = set()
    for table in template.of_type("AWS::DynamoDB::Table"):
        create_table(clients("dynamodb"), template, table)
        created.add(table)
    sqs = clients("sqs")
    queues = template.of_type("AWS::SQS::Queue")
    for queue in queues:  # first all queues, then their attributes: a redrive names another queue
        fifo = {"FifoQueue": "true"} if template.physical_name(queue).endswith(".fifo") else {}
        sqs.create_queue(QueueName=template.physical_name(queue), Attributes=fifo)
    for queue in queues:
        attributes = _queue_attributes(template.properties(queue))
        if attributes:
            sqs.set_queue_attributes(QueueUrl=template.queue_url(queue), Attributes=attributes)
        created.add(queue)
    events = clients("events")
    for bus in template.of_type("AWS::Events::EventBus"):
        name = template.physical_name(bus)
        with contextlib.suppress(events.exceptions.ResourceAlreadyExistsException):
            events.create_event_bus(Name=name)
        created.add(bus)
    for rule in template.of_type("AWS::Events::Rule"):
        notes += _create_rule(events, template, rule)
        created.add(rule)
    notifications = _function_event_sources(template, sqs, events, notes)
    for bucket in template.of_type("AWS::S3::Bucket"):
        notes += _create_bucket(clients("s3"), template, bucket, notifications.get(template.physical_name(bucket), []))
        created.add(bucket)
    for logical_id, resource in template.resources.items():
        if logical_id not in created and resource["Type"] not in NOTHING_TO_CREATE:
            notes.append(f"{logical_id} ({resource['Type']}) is not emulated locally")
    return notes


def create_table(dynamodb: Any, template: Template, logical_id: str, name: str | None = None) -> None:
    """Create the table `logical_id` declares, under its physical name or `name`."""
    properties = template.properties(logical_id)
    name = name or template.physical_name(logical_id)
    billing = properties.get("BillingMode", "PROVISIONED")

    def throughput(spec: dict[str, Any]) -> dict[str, Any]:
        if billing == "PAY_PER_REQUEST":
            return {}
        given = spec.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        return {"ProvisionedThroughput": {key: int(value) for key, value in given.items()}}

    def indexes(key: str) -> dict[str, Any]:
        specs = [
            {
                "IndexName": index["IndexName"],
                "KeySchema": index["KeySchema"],
                "Projection": index["Projection"],
                **(throughput(index) if key == "GlobalSecondaryIndexes" else {}),
            }
            for index in properties.get(key) or []
        ]
        return {key: specs} if specs else {}

    request = {
        "TableName": name,
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "KeySchema": properties["KeySchema"],
        "BillingMode": billing,
        **throughput(properties),
        **indexes("GlobalSecondaryIndexes"),
        **indexes("LocalSecondaryIndexes"),
    }
    with contextlib.suppress(dynamodb.exceptions.ResourceInUseException):  # from an earlier run (LOCAL_DATA_DIR)
        dynamodb.create_table(**request)
    deadline = time.monotonic() + 10
    while dynamodb.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
        if time.monotonic() > deadline:
            raise TimeoutError(f"table {name} did not become ACTIVE")
        time.sleep(0.02)


def _queue_attributes(properties: dict[str, Any]) -> dict[str, str]:
    attributes = {}
    for key in QUEUE_ATTRIBUTES:
        if key in properties:
            value = properties[key]
            attributes[key] = json.dumps(value) if isinstance(value, dict) else text(value)
    return attributes


def _target(target: dict[str, Any]) -> dict[str, Any]:
    keys = ("Id", "Arn", "InputTransformer", "SqsParameters")
    return {key: target[key] for key in keys if key in target}


def _create_rule(events: Any, template: Template, logical_id: str) -> list[str]:
    properties = template.properties(logical_id)
    notes = []
    if "EventPattern" not in properties:
        return [f"{logical_id}: only rules with an EventPattern are emulated (moto runs no schedules)"]
    bus = template.bus_name(properties.get("EventBusName", "default"))
    name = template.physical_name(logical_id)
    state = properties.get("State", "ENABLED")
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(properties["EventPattern"]), State=state)
    targets = []
    for target in properties.get("Targets") or []:
        if ":sqs:" in target["Arn"] or ":events:" in target["Arn"]:
            targets.append(_target(target))
        else:
            notes.append(f"{logical_id}: target {target['Arn']} is not emulated (only SQS queues and buses)")
    if targets:
        events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
    return notes


def _function_event_sources(template: Template, sqs: Any, events: Any, notes: list[str]) -> dict[str, list[dict]]:
    """Rules and delivery queues for the functions' rule and S3 events; the S3 ones by bucket name."""
    notifications: dict[str, list[dict]] = {}
    for spec in template.functions().values():
        for event in spec.events:
            if event.type not in (*RULE_EVENTS, "S3"):
                continue
            queue = delivery_queue_name(spec.logical_id, event.name)
            sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": str(spec.timeout + 5)})
            arn = queue_arn(template, queue)
            properties = event.properties
            if event.type == "S3":
                kinds = properties["Events"]
                configuration: dict[str, Any] = {
                    "QueueArn": arn,
                    "Events": [kinds] if isinstance(kinds, str) else kinds,
                }
                rules = ((properties.get("Filter") or {}).get("S3Key") or {}).get("Rules")
                if rules:
                    configuration["Filter"] = {"Key": {"FilterRules": rules}}
                notifications.setdefault(properties["Bucket"], []).append(configuration)
                continue
            if "Pattern" not in properties:
                notes.append(f"{spec.logical_id}.{event.name}: only rules with a Pattern are emulated")
                continue
            bus = template.bus_name(properties.get("EventBusName", "default"))
            rule = properties.get("RuleName") or queue
            state = properties.get("State", "ENABLED")
            events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps(properties["Pattern"]), State=state)
            target = {"Id": (properties.get("Target") or {}).get("Id", "local-delivery"), "Arn": arn}
            if "InputTransformer" in properties:
                target["InputTransformer"] = properties["InputTransformer"]
            events.put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    return notifications


def _create_bucket(s3: Any, template: Template, logical_id: str, function_notifications: list[dict]) -> list[str]:
    properties = template.properties(logical_id)
    name = template.physical_name(logical_id)
    location = (
        {} if template.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": template.region}}
    )
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=name, **location)
    if "VersioningConfiguration" in properties:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=properties["VersioningConfiguration"])
    template_notifications = properties.get("NotificationConfiguration") or {}
    configuration: dict[str, Any] = {}
    queues = [
        {
            "QueueArn": each["Queue"],
            "Events": [each["Event"]],
            **({"Filter": {"Key": {"FilterRules": each["Filter"]["S3Key"]["Rules"]}}} if "Filter" in each else {}),
        }
        for each in template_notifications.get("QueueConfigurations") or []
    ] + function_notifications
    if queues:
        configuration["QueueConfigurations"] = queues
    if (template_notifications.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled"):
        configuration["EventBridgeConfiguration"] = {}
    if configuration:
        s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration=configuration)
    unsupported = [key for key in ("LambdaConfigurations", "TopicConfigurations") if key in template_notifications]
    return [f"{logical_id}: {key} are not emulated (use a SAM S3 event)" for key in unsupported]

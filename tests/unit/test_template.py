"""What cfn-lint and `sam validate --lint` do not check in template.yaml (they missed a bad
runtime and a Ref to a missing resource inside a policy), plus the deployment rules of SPEC.md
section 7."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from inventory.api.http import CALLER_LOG_KEY

ROOT = Path(__file__).resolve().parents[2]
PSEUDO = {
    "AWS::Region",
    "AWS::AccountId",
    "AWS::StackName",
    "AWS::Partition",
    "AWS::URLSuffix",
    "AWS::NoValue",
    "AWS::StackId",
}
SUPPORTED_PYTHON = {"python3.11"}  # the runtime `sam build` can build here without a container


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _tag)
TEMPLATE: dict[str, Any] = yaml.load((ROOT / "template.yaml").read_text(), _Loader)
RESOURCES: dict[str, Any] = TEMPLATE["Resources"]
GLOBALS = TEMPLATE["Globals"]["Function"]


def of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: res for name, res in RESOURCES.items() if res["Type"] == kind}


FUNCTIONS = of_type("AWS::Serverless::Function")


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def referenced_names() -> set[str]:
    names: set[str] = set()
    for key, value in [*walk(RESOURCES), *walk(TEMPLATE.get("Outputs", {}))]:
        if key == "Ref":
            names.add(value)
        elif key == "Fn::GetAtt":
            names.add(value[0] if isinstance(value, list) else value.split(".")[0])
        elif key == "Fn::Sub":
            text = value if isinstance(value, str) else value[0]
            names |= {match.split(".")[0] for match in re.findall(r"\$\{([^!}][^}]*)\}", text)}
    return names


def test_every_reference_names_something_that_exists() -> None:
    known = set(RESOURCES) | set(TEMPLATE.get("Parameters", {})) | PSEUDO
    assert referenced_names() - known == set()


def test_runtime_and_architecture_agree_between_functions_and_layer() -> None:
    layer = RESOURCES["DomainLayer"]
    assert GLOBALS["Runtime"] in SUPPORTED_PYTHON
    assert layer["Metadata"]["BuildMethod"] == GLOBALS["Runtime"]
    assert layer["Properties"]["CompatibleRuntimes"] == [GLOBALS["Runtime"]]
    # Without BuildArchitecture, an arm64 layer silently ships x86_64 binaries.
    assert (
        [layer["Metadata"]["BuildArchitecture"]]
        == GLOBALS["Architectures"]
        == layer["Properties"]["CompatibleArchitectures"]
    )
    for name, function in FUNCTIONS.items():
        assert function["Properties"].get("Runtime", GLOBALS["Runtime"]) in SUPPORTED_PYTHON, name


def test_a_variable_means_the_same_in_every_function_that_has_it() -> None:
    """Settings are read by name (`inventory.settings`): one name for one value, so that a service
    built in one function never reads another's queue (and the tests can host every handler in one
    process, with every function's environment together)."""
    seen: dict[str, tuple[str, Any]] = {}
    for name, function in sorted(FUNCTIONS.items()):
        for variable, value in function["Properties"].get("Environment", {}).get("Variables", {}).items():
            first = seen.setdefault(variable, (name, value))
            assert first[1] == value, f"{variable}: {first[0]} has {first[1]}, {name} has {value}"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_has_its_handler_and_a_log_group_with_retention(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    assert props["Handler"] == "app.lambda_handler"
    source = ROOT / props["CodeUri"] / "app.py"
    tree = ast.parse(source.read_text())
    assert "lambda_handler" in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
    assert RESOURCES[log_group]["Type"] == "AWS::Logs::LogGroup"
    assert RESOURCES[log_group]["Properties"]["RetentionInDays"]


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_function_may_only_touch_named_resources(name: str) -> None:
    for policy in FUNCTIONS[name]["Properties"].get("Policies", []):
        for statement in policy["Statement"]:
            assert statement["Resource"] != "*", (name, statement["Action"])
            assert all(not action.endswith(":*") for action in statement["Action"]), name


def test_every_asynchronous_source_has_an_on_failure_destination() -> None:
    for name, function in FUNCTIONS.items():
        events = function["Properties"].get("Events", {}).values()
        if any(event["Type"] in {"Schedule", "ScheduleV2", "S3", "EventBridgeRule"} for event in events):
            assert function["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"], name


def test_the_table_survives_mistakes() -> None:
    table = RESOURCES["InventoryTable"]
    assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    props = table["Properties"]
    assert props["DeletionProtectionEnabled"] is True
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["TimeToLiveSpecification"]["Enabled"] is True


# What holds data or messages: a new logical id would replace the resource on the next deploy, and
# what it held (stock, messages waiting in a queue, files) would be lost with the old one.
STATEFUL = {
    "AWS::DynamoDB::Table": {"InventoryTable"},
    "AWS::SQS::Queue": {
        "ImportQueue",
        "ImportDeadLetterQueue",
        "FulfillmentQueue",
        "FulfillmentDeadLetterQueue",
        "ScheduledRunsDeadLetterQueue",
        "ExportQueue",
        "ExportDeadLetterQueue",
    },
    "AWS::S3::Bucket": {"ImportBucket", "ExportBucket"},
    "AWS::Events::EventBus": {"InventoryBus"},
}


@pytest.mark.parametrize("kind", sorted(STATEFUL))
def test_stateful_resources_keep_the_logical_ids_of_a_deployed_stack(kind: str) -> None:
    """Given a stack deployed with these resources, when the template is deployed over it, then each
    is updated in place: functions, rules and log groups may be renamed, these may not."""
    assert set(of_type(kind)) == STATEFUL[kind]


@pytest.mark.parametrize("name", sorted(of_type("AWS::S3::Bucket")))
def test_buckets_are_private_encrypted_tls_only_and_expire(name: str) -> None:
    props = RESOURCES[name]["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert all(props["PublicAccessBlockConfiguration"].values())
    assert props["LifecycleConfiguration"]["Rules"]
    policies = [p for p in of_type("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": name}]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert any(s["Effect"] == "Deny" and s["Condition"]["Bool"]["aws:SecureTransport"] == "false" for s in statements)


@pytest.mark.parametrize("name", sorted(of_type("AWS::SQS::Queue")))
def test_queues_are_encrypted_and_none_is_a_dead_end(name: str) -> None:
    props = RESOURCES[name]["Properties"]
    assert props.get("SqsManagedSseEnabled") or props.get("KmsMasterKeyId")
    # A queue without a redrive policy must itself be a dead-letter queue or destination.
    used_as_dead_letter = any(
        key in {"DeadLetterConfig", "OnFailure", "RedrivePolicy"} and name in str(value)
        for key, value in walk(RESOURCES)
    )
    assert "RedrivePolicy" in props or used_as_dead_letter, f"{name} has no dead-letter queue and is none"


def test_the_layer_requirements_are_the_pinned_runtime_dependencies() -> None:
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = (ROOT / "layers/domain/requirements.txt").read_text().split()
    assert layer == pinned
    assert all("==" in requirement for requirement in pinned)


def test_every_route_requires_iam_authorization() -> None:
    assert TEMPLATE["Globals"]["HttpApi"]["Auth"] == {"EnableIamAuthorizer": True, "DefaultAuthorizer": "AWS_IAM"}
    for function in FUNCTIONS.values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                assert "Auth" not in event["Properties"], "no route may opt out of IAM authorization"


def test_the_api_writes_one_json_access_log_line_per_request_kept_as_long_as_the_functions_logs() -> None:
    settings = RESOURCES["HttpApi"]["Properties"]["AccessLogSettings"]
    group = RESOURCES[settings["DestinationArn"]["Fn::GetAtt"][0]]
    # `...String` variables are quoted by API Gateway itself.
    fields = json.loads(re.sub(r"\$context\.[\w.]+String\b", '"-"', settings["Format"]))

    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert "\n" not in settings["Format"]
    # The keys the functions log the same request under (Powertools' correlation id, and ours).
    assert fields["correlation_id"] == "$context.requestId"
    assert fields[CALLER_LOG_KEY] == "$context.identity.userArn"
    for variable in [
        "$context.routeKey",
        "$context.status",
        "$context.responseLatency",
        "$context.integrationErrorMessage",
    ]:
        assert variable in fields.values()


def test_every_route_is_throttled_by_the_rate_and_burst_the_deployer_sets() -> None:
    route_defaults = RESOURCES["HttpApi"]["Properties"]["DefaultRouteSettings"]
    parameters = TEMPLATE["Parameters"]

    assert route_defaults["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert route_defaults["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    rate, burst = parameters["ApiThrottlingRateLimit"]["Default"], parameters["ApiThrottlingBurstLimit"]["Default"]
    assert 0 < rate <= burst
    for function in FUNCTIONS.values():
        for event in function["Properties"].get("Events", {}).values():
            if event["Type"] == "HttpApi":
                assert event["Properties"]["ApiId"] == {"Ref": "HttpApi"}  # no route on an API without limits
                assert "RouteSettings" not in event["Properties"]


NAME_PROPERTIES = {"Name", "TableName", "QueueName", "BucketName", "FunctionName", "LogGroupName", "TopicName"}


def test_every_name_the_template_gives_holds_the_stack_name() -> None:
    # Else a second stack in the account (samconfig.toml's default beside production) collides.
    named = [
        (name, res["Properties"][key])
        for name, res in RESOURCES.items()
        for key in NAME_PROPERTIES
        if key in res.get("Properties", {})
    ]
    for name, function in FUNCTIONS.items():
        for event_name, event in function["Properties"].get("Events", {}).items():
            if event["Type"] in {"ScheduleV2", "Schedule"}:
                # SAM names a schedule after the function and event alone unless it is given a name.
                assert "Name" in event["Properties"], f"{name}.{event_name}"
                named.append((f"{name}.{event_name}", event["Properties"]["Name"]))
    assert named
    for name, value in named:
        assert "${AWS::StackName}" in value.get("Fn::Sub", ""), name


def test_the_stock_import_worker_knows_when_the_queue_gives_up() -> None:
    worker_env = FUNCTIONS["StockImportWorkerFunction"]["Properties"]["Environment"]["Variables"]
    redrive = RESOURCES["ImportQueue"]["Properties"]["RedrivePolicy"]
    assert int(worker_env["IMPORT_MAX_RECEIVES"]) == redrive["maxReceiveCount"]


# ------------------------------------------------------------------------------------ alarms

ALARMS = of_type("AWS::CloudWatch::Alarm")


def alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(namespace, metric name, {dimension: value}) of every metric an alarm reads."""
    props = alarm["Properties"]
    specs = (
        [props] if "MetricName" in props else [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
    )
    for spec in specs:
        yield spec["Namespace"], spec["MetricName"], {d["Name"]: d["Value"] for d in spec.get("Dimensions", [])}


def watched(namespace: str, metric: str, dimension: str) -> set[str]:
    """The logical ids whose metric some alarm watches (dimension values are Refs or GetAtts)."""
    names = set()
    for alarm in ALARMS.values():
        for ns, name, dimensions in alarm_metrics(alarm):
            value = dimensions.get(dimension)
            if (ns, name) == (namespace, metric) and isinstance(value, dict):
                names.add(value.get("Ref") or value["Fn::GetAtt"][0])
    return names


def dead_letter_queues() -> set[str]:
    """Queues' redrive targets, functions' on-failure destinations and their events' dead-letter queues."""
    arns = [
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]
        for q in of_type("AWS::SQS::Queue").values()
        if "RedrivePolicy" in q["Properties"]
    ]
    for function in FUNCTIONS.values():
        props = function["Properties"]
        if "EventInvokeConfig" in props:
            arns.append(props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"])
        arns += [
            e["Properties"]["DeadLetterConfig"]["Arn"]
            for e in props.get("Events", {}).values()
            if "DeadLetterConfig" in e["Properties"]
        ]
    return {arn["Fn::GetAtt"][0] for arn in arns}


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    assert set(FUNCTIONS) - watched("AWS/Lambda", "Errors", "FunctionName") == set()
    assert set(FUNCTIONS) - watched("AWS/Lambda", "Throttles", "FunctionName") == set()


def test_the_apis_server_errors_have_an_alarm() -> None:
    # The HTTP functions answer their own crashes with a 500, which Lambda's Errors metric never counts.
    assert watched("AWS/ApiGateway", "5xx", "ApiId") == {"HttpApi"}


def test_every_dead_letter_queue_has_a_depth_and_an_age_alarm() -> None:
    queues = dead_letter_queues()

    assert queues == {
        "ImportDeadLetterQueue",
        "FulfillmentDeadLetterQueue",
        "ScheduledRunsDeadLetterQueue",
        "ExportDeadLetterQueue",
    }
    assert queues - watched("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName") == set()
    assert queues - watched("AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName") == set()


def test_the_outbox_lag_alarm_fires_when_the_relay_publishes_no_figure() -> None:
    lag = [a for a in ALARMS.values() if ("InventoryMaster", "OutboxLagSeconds") in {m[:2] for m in alarm_metrics(a)}]

    assert len(lag) == 1
    assert lag[0]["Properties"]["TreatMissingData"] == "breaching"


def test_every_alarm_notifies_the_alarm_topic() -> None:
    for name, alarm in ALARMS.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name


def runbook_sections() -> dict[str, str]:
    """The runbook's sections, by heading (an alarm's logical id)."""
    parts = re.split(r"^## (.+)$", (ROOT / "docs" / "runbook.md").read_text(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_alarm_has_a_runbook_section_that_its_notification_names() -> None:
    sections = runbook_sections()

    assert sorted(sections) == sorted(ALARMS)  # a section for every alarm, and none for an alarm gone
    for name, alarm in ALARMS.items():
        assert f"docs/runbook.md, section {name}" in alarm["Properties"]["AlarmDescription"], name
        for part in ["**What it means.**", "**How to see what is wrong.**", "**What to do.**"]:
            assert part in sections[name], (name, part)
        assert re.search(r"^aws \w+", sections[name], re.MULTILINE), f"{name}: no aws CLI command to look"


@pytest.mark.parametrize(
    "name", sorted(n for n, f in FUNCTIONS.items() if "ReservedConcurrentExecutions" in f["Properties"])
)
def test_queue_triggers_never_take_more_messages_than_the_reserved_concurrency_runs(name: str) -> None:
    props = FUNCTIONS[name]["Properties"]
    reserved = props["ReservedConcurrentExecutions"]
    for event in props.get("Events", {}).values():
        if event["Type"] == "SQS":
            # Else Lambda's pollers outrun the function, and throttled messages use up their receives.
            maximum = event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
            assert 2 <= maximum <= reserved, name

"""A SAM template as the local stack sees it: Globals merged, Conditions applied, intrinsics resolved.

Physical names are deterministic (`local-<logical id in lower case>` unless the template names the
resource), and `Ref`/`Fn::GetAtt` give what CloudFormation gives for them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"
STACK_NAME = "local"
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"
IMPLICIT_HTTP_API = "ServerlessHttpApi"

# Lambda's defaults when the template (and its Globals) say nothing.
DEFAULT_TIMEOUT = 3
DEFAULT_MEMORY_SIZE = 128

NO_VALUE: Any = object()  # what `Ref: AWS::NoValue` resolves to: the key or item disappears

NAME_PROPERTIES = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::S3::Bucket": "BucketName",
    "AWS::Events::EventBus": "Name",
    "AWS::Events::Rule": "Name",
    "AWS::Serverless::Function": "FunctionName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::Serverless::LayerVersion": "LayerName",
    "AWS::Lambda::LayerVersion": "LayerName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::IAM::Role": "RoleName",
}

ARN_FORMATS = {
    "AWS::DynamoDB::Table": "arn:{p}:dynamodb:{r}:{a}:table/{n}",
    "AWS::SQS::Queue": "arn:{p}:sqs:{r}:{a}:{n}",
    "AWS::S3::Bucket": "arn:{p}:s3:::{n}",
    "AWS::Events::EventBus": "arn:{p}:events:{r}:{a}:event-bus/{n}",
    "AWS::Serverless::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::Lambda::Function": "arn:{p}:lambda:{r}:{a}:function:{n}",
    "AWS::Serverless::LayerVersion": "arn:{p}:lambda:{r}:{a}:layer:{n}:1",
    "AWS::Lambda::LayerVersion": "arn:{p}:lambda:{r}:{a}:layer:{n}:1",
    "AWS::SNS::Topic": "arn:{p}:sns:{r}:{a}:{n}",
    "AWS::Logs::LogGroup": "arn:{p}:logs:{r}:{a}:log-group:{n}:*",
    "AWS::CloudWatch::Alarm": "arn:{p}:cloudwatch:{r}:{a}:alarm:{n}",
    "AWS::IAM::Role": "arn:{p}:iam::{a}:role/{n}",
    "AWS::Serverless::StateMachine": "arn:{p}:states:{r}:{a}:stateMachine:{n}",
}

HTTP_API_TYPES = ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api")


class TemplateError(Exception):
    """The template asks for something that cannot be resolved locally."""


# ------------------------------------------------------------------------------------------ loading


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags; dates stay strings as CloudFormation reads them."""


_Loader.yaml_implicit_resolvers = {
    first: [resolver for resolver in resolvers if resolver[0] != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _short_tag(tag: str) -> Any:
    key = tag if tag in ("Ref", "Condition") else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {key: value}

    return construct


for _tag in (
    "Ref",
    "Condition",
    "GetAtt",
    "Sub",
    "If",
    "Not",
    "Equals",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Cidr",
):
    _Loader.add_constructor(f"!{_tag}", _short_tag(_tag))


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)  # noqa: S506 - a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path} is not a template")
    return document


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = str(next(iter(value)))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_value: Any, local_value: Any) -> Any:
    """SAM's rules: maps merge (the resource wins), lists add up (Globals first), scalars are replaced."""
    if isinstance(global_value, dict) and isinstance(local_value, dict):
        if _is_intrinsic(global_value) or _is_intrinsic(local_value):
            return local_value
        merged = dict(global_value)
        for key, value in local_value.items():
            merged[key] = merge_globals(global_value[key], value) if key in global_value else value
        return merged
    if isinstance(global_value, list) and isinstance(local_value, list):
        return global_value + local_value
    return local_value


def text(value: Any) -> str:
    """A value as CloudFormation writes it into a string (Sub, Join, environment variables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------------ model


@dataclass(frozen=True)
class Event:
    name: str
    type: str
    properties: dict[str, Any]


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    name: str
    arn: str
    handler: str
    runtime: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    timeout: int
    memory_size: int
    reserved_concurrency: int | None
    log_group: str
    log_format: str
    events: tuple[Event, ...]


class Template:
    """A loaded template; `resources` holds those whose Condition holds, with Globals merged."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        region: str | None = None,
        parameters: dict[str, str] | None = None,
        aws_endpoint: str | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.root = self.path.parent
        self.region = region or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.aws_endpoint = aws_endpoint
        self.warnings: list[str] = []
        raw = load_yaml(self.path)
        self._parameters: dict[str, dict[str, Any]] = raw.get("Parameters") or {}
        self._overrides = dict(parameters or {})
        self._mappings: dict[str, Any] = raw.get("Mappings") or {}
        self._condition_specs: dict[str, Any] = raw.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self.outputs: dict[str, Any] = raw.get("Outputs") or {}
        globals_: dict[str, Any] = raw.get("Globals") or {}
        self.globals = globals_
        self.resources: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (raw.get("Resources") or {}).items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            kind: str = resource["Type"]
            properties = resource.get("Properties") or {}
            section = kind.removeprefix("AWS::Serverless::")
            if kind.startswith("AWS::Serverless::") and section in globals_:
                properties = merge_globals(globals_[section], properties)
            self.resources[logical_id] = {**resource, "Properties": properties}

    def warn(self, message: str) -> None:
        """Note something the local stack does not emulate (once)."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -------------------------------------------------------------------------------- lookups

    def of_type(self, *kinds: str) -> list[str]:
        return [logical_id for logical_id, resource in self.resources.items() if resource["Type"] in kinds]

    def type_of(self, logical_id: str) -> str:
        return str(self._resource(logical_id)["Type"])

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties with every intrinsic resolved."""
        resolved = self.resolve(self._resource(logical_id)["Properties"])
        assert isinstance(resolved, dict)
        return resolved

    def _resource(self, logical_id: str) -> dict[str, Any]:
        if logical_id == IMPLICIT_HTTP_API and logical_id not in self.resources:
            return {"Type": "AWS::Serverless::HttpApi", "Properties": self.globals.get("HttpApi") or {}}
        try:
            return self.resources[logical_id]
        except KeyError:
            raise TemplateError(f"no resource {logical_id!r} (or its Condition is false)") from None

    def parameter(self, name: str) -> Any:
        spec = self._parameters[name]
        if name in self._overrides:
            value: Any = self._overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise TemplateError(f"parameter {name!r} has no default and no value was given")
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            return [item.strip() for item in value.split(",")] if isinstance(value, str) else list(value)
        return text(value)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_specs:
                raise TemplateError(f"no condition {name!r}")
            self._conditions[name] = bool(self.resolve(self._condition_specs[name]))
        return self._conditions[name]

    def pseudo(self, name: str) -> Any:
        values: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": STACK_NAME,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{self.region}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        return values[name]

    # -------------------------------------------------------------------------------- names

    def physical_name(self, logical_id: str) -> str:
        resource = self._resource(logical_id)
        kind = resource["Type"]
        properties = resource["Properties"]
        name_property = NAME_PROPERTIES.get(kind)
        if name_property and name_property in properties:
            return text(self.resolve(properties[name_property]))
        if kind in HTTP_API_TYPES:
            return hashlib.sha256(logical_id.encode()).hexdigest()[:10]
        name = f"{STACK_NAME}-{logical_id.lower()}"
        if kind == "AWS::SQS::Queue" and text(self.resolve(properties.get("FifoQueue", False))) == "true":
            name += ".fifo"
        return name

    def arn(self, logical_id: str) -> str:
        kind = self.type_of(logical_id)
        name = self.physical_name(logical_id)
        if kind == "AWS::Events::Rule":
            bus = self.bus_name(self.properties(logical_id).get("EventBusName", "default"))
            rule = name if bus == "default" else f"{bus}/{name}"
            return f"arn:{PARTITION}:events:{self.region}:{ACCOUNT_ID}:rule/{rule}"
        if kind not in ARN_FORMATS:
            raise TemplateError(f"no ARN for {logical_id} ({kind}) locally")
        return ARN_FORMATS[kind].format(p=PARTITION, r=self.region, a=ACCOUNT_ID, n=name)

    def queue_url(self, logical_id: str) -> str:
        return self.queue_url_for(self.physical_name(logical_id))

    def queue_url_for(self, name: str) -> str:
        """The URL of the queue with this name (moto's form once the local endpoint is known)."""
        if self.aws_endpoint:
            return f"{self.aws_endpoint}/{ACCOUNT_ID}/{name}"
        return f"https://sqs.{self.region}.{URL_SUFFIX}/{ACCOUNT_ID}/{name}"

    @staticmethod
    def bus_name(name_or_arn: str) -> str:
        return name_or_arn.rsplit("event-bus/", 1)[-1]

    def ref(self, name: str) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self._parameters:
            return self.parameter(name)
        kind = self.type_of(name)
        if kind == "AWS::SQS::Queue":
            return self.queue_url(name)
        if kind in ("AWS::SNS::Topic", "AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion"):
            return self.arn(name)
        if kind == "AWS::Events::Rule":
            bus = self.bus_name(self.properties(name).get("EventBusName", "default"))
            rule = self.physical_name(name)
            return rule if bus == "default" else f"{bus}|{rule}"
        return self.physical_name(name)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        kind = self.type_of(logical_id)
        name = self.physical_name(logical_id)
        region = self.region
        attributes: dict[str, Any] = {
            "AWS::SQS::Queue": {"QueueName": name, "QueueUrl": self.queue_url_for(name)},
            "AWS::S3::Bucket": {
                "DomainName": f"{name}.s3.{URL_SUFFIX}",
                "RegionalDomainName": f"{name}.s3.{region}.{URL_SUFFIX}",
                "DualStackDomainName": f"{name}.s3.dualstack.{region}.{URL_SUFFIX}",
                "WebsiteURL": f"http://{name}.s3-website-{region}.{URL_SUFFIX}",
            },
            "AWS::Events::EventBus": {"Name": name},
            "AWS::SNS::Topic": {"TopicName": name},
            "AWS::Serverless::HttpApi": {
                "ApiId": name,
                "ApiEndpoint": f"https://{name}.execute-api.{region}.{URL_SUFFIX}",
            },
            "AWS::IAM::Role": {"RoleId": f"AROA{name.upper()}"},
        }.get(kind, {})
        if attribute in attributes:
            return attributes[attribute]
        if attribute in ("Arn", "TopicArn", "LayerVersionArn"):
            return self.arn(logical_id)
        if kind == "AWS::DynamoDB::Table" and attribute == "StreamArn":
            return f"{self.arn(logical_id)}/stream/1970-01-01T00:00:00.000"
        raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} ({kind}) is not available locally")

    # -------------------------------------------------------------------------------- intrinsics

    def resolve(self, value: Any) -> Any:
        """A value with every intrinsic function replaced by what CloudFormation would give."""
        if isinstance(value, list):
            return [item for item in (self.resolve(each) for each in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            key, argument = next(iter(value.items()))
            if key == "Ref" and isinstance(argument, str):
                return self.ref(argument)
            if key == "Condition" and isinstance(argument, str):
                return self.condition(argument)
            if key.startswith("Fn::"):
                return self._function(key[4:], argument)
        resolved = {key: self.resolve(item) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}

    def _function(self, name: str, argument: Any) -> Any:
        if name == "If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.condition(condition) else when_false)
        if name == "Sub":
            return self._sub(argument)
        if name == "GetAtt":
            logical_id, attribute = argument.split(".", 1) if isinstance(argument, str) else argument
            return self.get_att(logical_id, self.resolve(attribute))
        args = self.resolve(argument)
        if name == "Equals":
            return text(args[0]) == text(args[1])
        if name == "Not":
            return not args[0]
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        if name == "Join":
            return text(args[0]).join(text(item) for item in args[1])
        if name == "Select":
            return args[1][int(args[0])]
        if name == "Split":
            return text(args[1]).split(text(args[0]))
        if name == "FindInMap":
            return self._mappings[args[0]][args[1]][args[2]]
        if name == "Base64":
            return base64.b64encode(text(args).encode()).decode()
        if name == "GetAZs":
            return [f"{args or self.region}{zone}" for zone in "abc"]
        raise TemplateError(f"Fn::{name} cannot be resolved locally")

    _SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")

    def _sub(self, argument: Any) -> str:
        template, variables = (argument, {}) if isinstance(argument, str) else argument

        def replace(match: re.Match[str]) -> str:
            expression = match.group(1).strip()
            if expression.startswith("!"):
                return "${" + expression[1:] + "}"
            if expression in variables:
                return text(self.resolve(variables[expression]))
            if "." in expression:
                logical_id, attribute = expression.split(".", 1)
                return text(self.get_att(logical_id, attribute))
            return text(self.ref(expression))

        return self._SUB_VARIABLE.sub(replace, template)

    # -------------------------------------------------------------------------------- functions

    def functions(self) -> dict[str, FunctionSpec]:
        """The template's Python zip functions, ready to run; the others are listed in `warnings`."""
        layer_dirs: dict[str, Path] = {}
        for layer_id in self.of_type("AWS::Serverless::LayerVersion"):
            content = self.properties(layer_id).get("ContentUri")
            if isinstance(content, str):
                layer_dirs[self.arn(layer_id)] = self.root / content
        functions: dict[str, FunctionSpec] = {}
        for logical_id in self.of_type("AWS::Serverless::Function"):
            spec = self._function_spec(logical_id, layer_dirs)
            if spec is not None:
                functions[logical_id] = spec
        return functions

    def _function_spec(self, logical_id: str, layer_dirs: dict[str, Path]) -> FunctionSpec | None:
        raw = self._resource(logical_id)["Properties"]
        runtime = text(self.resolve(raw.get("Runtime", "")))
        code_uri = self.resolve(raw.get("CodeUri"))
        if not runtime.startswith("python") or not isinstance(code_uri, str) or raw.get("PackageType") == "Image":
            self.warn(f"{logical_id}: only Python functions with a CodeUri folder run locally")
            return None
        layers: list[Path] = []
        for layer in self.resolve(raw.get("Layers", [])):
            if layer in layer_dirs:
                layers.append(layer_dirs[layer])
            else:
                self.warn(f"{logical_id}: layer {layer} is not in the template, so not available locally")
        variables = self.resolve((raw.get("Environment") or {}).get("Variables") or {})
        logging_config = self.resolve(raw.get("LoggingConfig") or {})
        name = self.physical_name(logical_id)
        reserved = self.resolve(raw.get("ReservedConcurrentExecutions"))
        if "EventInvokeConfig" in raw:
            self.warn(f"{logical_id}: EventInvokeConfig (asynchronous retries, destinations) is not emulated")
        events = tuple(
            Event(event_name, str(event["Type"]), self.resolve(event.get("Properties") or {}))
            for event_name, event in (raw.get("Events") or {}).items()
        )
        return FunctionSpec(
            logical_id=logical_id,
            name=name,
            arn=self.arn(logical_id),
            handler=text(self.resolve(raw["Handler"])),
            runtime=runtime,
            code_dir=self.root / code_uri,
            layer_dirs=tuple(layers),
            environment={key: text(value) for key, value in variables.items()},
            timeout=int(self.resolve(raw.get("Timeout", DEFAULT_TIMEOUT))),
            memory_size=int(self.resolve(raw.get("MemorySize", DEFAULT_MEMORY_SIZE))),
            reserved_concurrency=None if reserved is None else int(reserved),
            log_group=text(logging_config.get("LogGroup", f"/aws/lambda/{name}")),
            log_format=text(logging_config.get("LogFormat", "Text")),
            events=events,
        )

    def function_for_arn(self, arn: str) -> str | None:
        """The logical id of the template's function with this ARN (a rule or bucket target)."""
        for logical_id in self.of_type("AWS::Serverless::Function"):
            if self.arn(logical_id) == arn:
                return logical_id
        return None

"""The local stack: `LocalAws` (the emulated AWS, provisioned from the template) and `Stack`
(that, plus the functions' runtime, the HTTP API and the queue and schedule triggers).

    with LocalAws("template.yaml") as aws:          # integration tests: handlers in-process
        os.environ.update(aws.function_env("LocationsFunction"))

    with Stack("template.yaml", port=3000) as stack:  # the service, over HTTP at stack.api_url
        ...

Moto's backends live in this process, so one LocalAws runs in a process at a time.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from local.backends import HOST, Dynalite, MotoServer
from local.http_api import HttpApi, Route, routes_from
from local.provision import provision
from local.runtime import Invocation, Runtime, lambda_environment
from local.template import FunctionSpec, Template
from local.triggers import Triggers

# Where the local stack departs from the template's defaults. An import naming its watermark settles
# its sums 2 s after its claim, not the 120 s of the deployment (the fulfilment function's timeout and
# a margin): a local shipment batch takes well under a second.
LOCAL_PARAMETERS = {"ImportSettleSeconds": "2"}


class LocalAws:
    """dynalite and moto on 127.0.0.1 (port 0: any free port), with the template's resources."""

    def __init__(
        self,
        template_path: str | os.PathLike[str] = "template.yaml",
        *,
        aws_port: int = 0,
        dynamodb_port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        region: str | None = None,
        parameters: dict[str, str] | None = None,
    ) -> None:
        given = {**LOCAL_PARAMETERS, **(parameters or {})}
        self.template = Template(template_path, region=region, parameters=given)
        self.region = self.template.region
        self.functions: dict[str, FunctionSpec] = {}
        self.notes: list[str] = []  # what the template has that is not emulated
        self._dynalite = Dynalite(dynamodb_port, data_dir)
        self._moto = MotoServer(aws_port)

    @property
    def aws_endpoint(self) -> str:
        """moto: SQS, EventBridge, S3 and the rest (AWS_ENDPOINT_URL)."""
        return self._moto.endpoint

    @property
    def dynamodb_endpoint(self) -> str:
        """dynalite (AWS_ENDPOINT_URL_DYNAMODB)."""
        return self._dynalite.endpoint

    def start(self) -> LocalAws:
        try:
            self._dynalite.start()
            self._moto.start()
            self.template.aws_endpoint = self.aws_endpoint
            self.functions = self.template.functions()
            self.notes = provision(self.template, self.client)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._moto.stop()
        self._dynalite.stop()

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client for the local endpoint of the service (a session of its own: thread-safe)."""
        return boto3.session.Session().client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.dynamodb_endpoint if service == "dynamodb" else self.aws_endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the local backends check nothing
            config=Config(retries={"max_attempts": 2, "mode": "standard"}),
        )

    # ------------------------------------------------------------------------------ names

    def name(self, logical_id: str) -> str:
        """The physical name: local-<logical id in lower case>, or the name the template gives."""
        return self.template.physical_name(logical_id)

    def ref(self, logical_id: str) -> Any:
        """What `!Ref` gives: a table's or bucket's name, a queue's URL, a bus's name, ..."""
        return self.template.ref(logical_id)

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.template.get_att(logical_id, attribute)

    def arn(self, logical_id: str) -> str:
        return self.template.arn(logical_id)

    def queue_url(self, logical_id: str) -> str:
        return self.template.queue_url(logical_id)

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The environment the function's handler gets: the template's variables, Lambda's own,
        the local endpoints and fake credentials."""
        return lambda_environment(
            self.functions[logical_id],
            region=self.region,
            aws_endpoint=self.aws_endpoint,
            dynamodb_endpoint=self.dynamodb_endpoint,
        )


class Stack:
    """LocalAws plus the service: the HTTP API at `api_url` and the queue and schedule triggers."""

    def __init__(
        self,
        template_path: str | os.PathLike[str] = "template.yaml",
        *,
        port: int = 0,
        aws_port: int = 0,
        dynamodb_port: int = 0,
        data_dir: str | os.PathLike[str] | None = None,
        region: str | None = None,
        parameters: dict[str, str] | None = None,
        schedule_scale: float | None = None,
        host: str = HOST,
    ) -> None:
        self.aws = LocalAws(
            template_path,
            aws_port=aws_port,
            dynamodb_port=dynamodb_port,
            data_dir=data_dir,
            region=region,
            parameters=parameters,
        )
        self.port = port
        self.host = host
        self.schedule_scale = schedule_scale or float(os.environ.get("LOCAL_SCHEDULE_SCALE") or 1)
        self.routes: list[Route] = []
        self.runtime: Runtime | None = None
        self.api: HttpApi | None = None
        self.triggers: Triggers | None = None

    @property
    def api_url(self) -> str:
        assert self.api is not None, "the stack is not started"
        return self.api.url

    @property
    def warnings(self) -> list[str]:
        """What the template has that the local stack does not emulate."""
        return [*self.aws.notes, *self.aws.template.warnings]

    def start(self) -> Stack:
        try:
            self.aws.start()
            template, functions = self.aws.template, self.aws.functions
            environments = {logical_id: self.aws.function_env(logical_id) for logical_id in functions}
            self.runtime = Runtime(functions, environments)
            self.routes = routes_from(template, functions)
            self.api = HttpApi(self.routes, self.runtime.invoke, region=self.aws.region, host=self.host, port=self.port)
            sqs = self.aws.client("sqs")
            self.triggers = Triggers(template, functions, self.runtime.invoke, sqs, schedule_scale=self.schedule_scale)
            self.api.start()
            self.triggers.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop triggers, server and workers, then the backends; nothing is left running."""
        if self.triggers is not None:
            self.triggers.stop()
        if self.api is not None:
            self.api.stop()
        if self.runtime is not None:
            self.runtime.stop()
        if self.triggers is not None:
            self.triggers.join()
        self.aws.stop()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def invoke(self, logical_id: str, event: Any) -> Invocation:
        """Invoke a function synchronously, as the Lambda Invoke API would."""
        assert self.runtime is not None, "the stack is not started"
        return self.runtime.invoke(logical_id, event)

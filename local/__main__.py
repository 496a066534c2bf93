"""`python -m local [TEMPLATE]`: the service from ./template.yaml on 127.0.0.1 until Ctrl-C or SIGTERM.

Ports: PORT (HTTP API, default 3000), LOCAL_AWS_PORT (moto, default 4566), LOCAL_DYNAMODB_PORT
(dynalite, default 4567); 0 picks a free one. LOCAL_DATA_DIR keeps DynamoDB's data across runs.
LOCAL_SCHEDULE_SCALE divides the schedules' periods. Prints a line with "ready" once up.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from types import FrameType

from local.backends import BackendError
from local.stack import Stack
from local.template import TemplateError

RESOURCE_KINDS = {
    "AWS::DynamoDB::Table": "table",
    "AWS::Events::EventBus": "event bus",
    "AWS::SQS::Queue": "queue",
    "AWS::S3::Bucket": "bucket",
}


def _port(variable: str, default: int) -> int:
    return int(os.environ.get(variable) or default)


def summary(stack: Stack, seconds: float) -> str:
    aws, template = stack.aws, stack.aws.template
    lines = [
        f"Local stack from {template.path.name} (region {aws.region}, account 123456789012), up in {seconds:.1f} s",
        f"  HTTP API             {stack.api_url}",
        f"  AWS (moto)           {aws.aws_endpoint}   AWS_ENDPOINT_URL",
        f"  DynamoDB (dynalite)  {aws.dynamodb_endpoint}   AWS_ENDPOINT_URL_DYNAMODB",
        "Resources:",
    ]
    for kind, label in RESOURCE_KINDS.items():
        for logical_id in template.of_type(kind):
            url = f"  {aws.queue_url(logical_id)}" if kind == "AWS::SQS::Queue" else ""
            lines.append(f"  {label:<10} {logical_id:<28} {aws.name(logical_id)}{url}")
    lines.append("Routes:")
    lines += [f"  {route.key:<60} -> {route.function}" for route in stack.routes]
    if stack.triggers is not None and stack.triggers.sources:
        lines.append("Triggers:")
        lines += [f"  {source}" for source in stack.triggers.sources]
    if stack.warnings:
        lines.append("Not emulated:")
        lines += [f"  {warning}" for warning in stack.warnings]
    lines.append(f"Local stack ready at {stack.api_url} (Ctrl-C to stop)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__.split("\n", 1)[0])
    parser.add_argument("template", nargs="?", default="template.yaml", help="the SAM template (./template.yaml)")
    args = parser.parse_args(argv)
    stopping = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    try:
        stack = Stack(
            args.template,
            port=_port("PORT", 3000),
            aws_port=_port("LOCAL_AWS_PORT", 4566),
            dynamodb_port=_port("LOCAL_DYNAMODB_PORT", 4567),
            data_dir=os.environ.get("LOCAL_DATA_DIR") or None,
        ).start()
    except (BackendError, TemplateError, OSError) as exc:
        print(f"The local stack did not start: {exc}", file=sys.stderr, flush=True)
        return 1
    try:
        print(summary(stack, time.monotonic() - started), flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        print("Stopping the local stack", flush=True)
        stack.stop()
    print("Local stack stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`python -m inventory.ops dlq list|redrive|purge|codes`: what the dead-letter queues hold, and why;
their records sent back to their function's queue once the cause is fixed, or deleted.

Where the queues are, in this order: --queue-url (with --source-queue-url, or else the queue whose
redrive policy names it); --stack NAME, the deployed stack's outputs; --local, the local stack
(`make run`) on AWS_ENDPOINT_URL (default http://127.0.0.1:4566); else the environment variables
FULFILLMENT_DEAD_LETTER_QUEUE_URL, FULFILLMENT_QUEUE_URL, IMPORT_DEAD_LETTER_QUEUE_URL,
IMPORT_QUEUE_URL and SCHEDULED_RUNS_DEAD_LETTER_QUEUE_URL.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO, TypedDict

from botocore.exceptions import BotoCoreError, ClientError

from inventory.messages.dead_letters import reason_codes
from inventory.ops import dead_letters
from inventory.ops.dead_letters import Outcome, Record, Selection
from inventory.ops.queues import (
    QUEUES,
    DeadLetterQueue,
    EnvironmentUrls,
    LocalQueues,
    QueueNotFound,
    StackOutputs,
    Urls,
    source_of,
)

if TYPE_CHECKING:
    import boto3.session
    from botocore.config import Config
    from mypy_boto3_cloudformation.client import CloudFormationClient
    from mypy_boto3_sqs.client import SQSClient

LOCAL_ENDPOINT = "http://127.0.0.1:4566"  # `make run`'s LOCAL_AWS_PORT
LOCAL_REGION = "eu-west-1"  # the Makefile's AWS_DEFAULT_REGION
DEFAULT_LIST_LIMIT = 1000
OK, INCOMPLETE, CANNOT_RUN = 0, 1, 2


class Refused(Exception):
    """The command cannot run as asked (exit status 2)."""


@dataclass
class Aws:
    """boto3 clients, created on first use (not for --help, nor for a command that fails its checks)."""

    environ: Mapping[str, str]
    local: bool = False
    _clients: dict[str, Any] = field(default_factory=dict)

    def sqs(self) -> SQSClient:
        if "sqs" not in self._clients:
            self._clients["sqs"] = self._session().client("sqs", **self._options())
        client: SQSClient = self._clients["sqs"]
        return client

    def cloudformation(self) -> CloudFormationClient:
        if "cloudformation" not in self._clients:
            self._clients["cloudformation"] = self._session().client("cloudformation", **self._options())
        client: CloudFormationClient = self._clients["cloudformation"]
        return client

    @staticmethod
    def _session() -> boto3.session.Session:
        import boto3

        return boto3.session.Session()

    def _options(self) -> _ClientOptions:
        from botocore.config import Config

        options: _ClientOptions = {"config": Config(retries={"mode": "standard", "max_attempts": 5})}
        if self.local:
            env = self.environ
            options["endpoint_url"] = env.get("AWS_ENDPOINT_URL_SQS") or env.get("AWS_ENDPOINT_URL") or LOCAL_ENDPOINT
            options["region_name"] = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or LOCAL_REGION
            if not env.get("AWS_ACCESS_KEY_ID"):  # the local backends check none; boto3 wants some
                options["aws_access_key_id"] = options["aws_secret_access_key"] = "testing"  # noqa: S105
        return options


class _ClientOptions(TypedDict, total=False):
    config: Config
    endpoint_url: str
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


@dataclass
class Target:
    """One dead-letter queue, resolved."""

    name: str
    url: str
    queue: DeadLetterQueue | None  # None: a queue given by URL only
    source: Callable[[], str]  # the URL its records are redriven to


def parser() -> argparse.ArgumentParser:
    where = argparse.ArgumentParser(add_help=False)
    group = where.add_argument_group("where the queues are (see the README's Dead letters section)")
    place = group.add_mutually_exclusive_group()
    place.add_argument("--stack", metavar="NAME", help="the deployed stack: its outputs name the queues")
    place.add_argument("--local", action="store_true", help="the local stack (make run) on AWS_ENDPOINT_URL")
    place.add_argument("--queue-url", metavar="URL", help="a dead-letter queue by its URL")
    group.add_argument("--source-queue-url", metavar="URL", help="with --queue-url: where redriven records go")

    def select(command: argparse.ArgumentParser) -> None:
        command.add_argument("--queue", choices=sorted(QUEUES), required=True)
        chosen = command.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--message-id", action="append", metavar="ID", help="this record (repeatable)")
        chosen.add_argument("--code", help="every record with this reason code")
        chosen.add_argument("--all", action="store_true", help="every record of the queue")

    top = argparse.ArgumentParser(prog="python -m inventory.ops", description="Operators' commands.")
    areas = top.add_subparsers(dest="area", required=True)
    dlq = areas.add_parser("dlq", help="the dead-letter queues", description=__doc__.split("\n\n", 1)[0])
    commands = dlq.add_subparsers(dest="command", required=True)

    listing = commands.add_parser(
        "list",
        parents=[where],
        help="one line per record: id, sent, receives, reason, what it is",
        description="Receives each record once, hiding it from other readers for up to "
        f"{dead_letters.LIST_HOLD_SECONDS} s (made visible again when the listing ends); consumes none.",
    )
    listing.add_argument("--queue", choices=sorted(QUEUES), help="one queue (default: all three)")
    listing.add_argument("--code", help="only records with this reason code")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIST_LIMIT, help="at most this many per queue")
    listing.add_argument("--json", action="store_true", help="JSON lines, with the reason's details and the body")

    redrive = commands.add_parser(
        "redrive",
        parents=[where],
        help="send records back to their function's queue, then delete them",
        description="Sends each selected record's original body to the queue of the function that failed "
        "it, then deletes the record: a crash between the two leaves a copy (which takes effect once), "
        "never a loss.",
    )
    select(redrive)
    redrive.add_argument("--dry-run", action="store_true", help="say what would be redriven, change nothing")

    purge = commands.add_parser(
        "purge", parents=[where], help="delete records that will never succeed", description="Deletes records."
    )
    select(purge)
    purge.add_argument("--yes", action="store_true", help="delete (without it: say what would be deleted)")

    commands.add_parser("codes", help="the reason codes a record can carry")
    return top


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
    aws: Aws | None = None,
) -> int:
    args = parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    out, err = out or sys.stdout, err or sys.stderr
    aws = aws or Aws(environ, local=bool(getattr(args, "local", False)))
    if args.command == "codes":
        for code in all_codes():
            print(code, file=out)
        return OK
    try:
        if getattr(args, "code", None) and args.code not in all_codes():
            print(f"warning: {args.code!r} is not a reason code of this version (see `dlq codes`)", file=err)
        if args.command == "list":
            return list_records(args, aws, environ, out, err)
        return change(args, aws, environ, out, err)
    except Refused as refused:
        print(f"error: {refused}", file=err)
        return CANNOT_RUN
    except (ClientError, BotoCoreError) as error:
        print(f"error: {type(error).__name__}: {error}", file=err)
        return CANNOT_RUN


def all_codes() -> list[str]:
    return sorted({*reason_codes(), *dead_letters.TOOL_CODES})


def urls(args: argparse.Namespace, aws: Aws, environ: Mapping[str, str]) -> Urls:
    if args.stack:
        return StackOutputs(aws.cloudformation(), args.stack)
    if args.local:
        return LocalQueues(aws.sqs())
    return EnvironmentUrls(environ)


def targets(args: argparse.Namespace, aws: Aws, environ: Mapping[str, str]) -> list[Target]:
    if args.source_queue_url and not args.queue_url:
        raise Refused("--source-queue-url goes with --queue-url")
    if args.queue_url:
        name = args.queue or "queue"
        given = args.source_queue_url
        return [Target(name, args.queue_url, QUEUES.get(name), lambda: given or source_of(aws.sqs(), args.queue_url))]
    found = urls(args, aws, environ)
    chosen = [QUEUES[args.queue]] if args.queue else list(QUEUES.values())
    resolved = []
    for queue in chosen:
        try:
            url = found.url(queue.logical_id)
        except QueueNotFound as missing:
            raise Refused(f"the {queue.name} dead-letter queue: {missing}") from missing
        resolved.append(Target(queue.name, url, queue, _source(found, queue)))
    return resolved


def _source(found: Urls, queue: DeadLetterQueue) -> Callable[[], str]:
    def source() -> str:
        if queue.source is None:
            raise Refused(f"the {queue.name} queue's records are not redriven")
        try:
            return found.url(queue.source)
        except QueueNotFound as missing:
            raise Refused(f"where the {queue.name} records go: {missing}") from missing

    return source


def list_records(args: argparse.Namespace, aws: Aws, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    limit = args.limit if args.limit > 0 else None
    select = Selection(code=args.code)
    for target in targets(args, aws, environ):
        found = dead_letters.records(aws.sqs(), target.name, target.url, select, limit)
        for record in found:
            print(json.dumps(record.as_json()) if args.json else line(record), file=out)
        more = " (the limit: more may wait; --limit 0 for all)" if limit is not None and len(found) >= limit else ""
        code = f" with reason {args.code}" if args.code else ""
        print(f"# {target.name}: {len(found)} records{code}{more} in {target.url}", file=err if args.json else out)
    return OK


def line(record: Record) -> str:
    reason = f"{record.reason.code}  {dead_letters.reason_text(record.reason)}"
    sent = dead_letters.stamp(record.sent_at)
    about = dead_letters.summary_text(record.summary)
    return f"{record.queue}  {record.message_id}  {sent}  receives={record.receive_count}  {reason}  | {about}"


SCHEDULED = (
    "the scheduled runs' records are not redriven: the next run does what a failed one did not (the "
    "outbox relay every minute, the abandoned-requests sweep every five minutes). Read them with "
    "`dlq list --queue scheduled`, fix the cause, then delete them with `dlq purge --queue scheduled`."
)


def change(args: argparse.Namespace, aws: Aws, environ: Mapping[str, str], out: TextIO, err: TextIO) -> int:
    (target,) = targets(args, aws, environ)
    select = Selection(message_ids=frozenset(args.message_id or ()), code=args.code, everything=args.all)
    if args.command == "redrive":
        if target.queue is not None and target.queue.source is None:
            raise Refused(SCHEDULED)
        source = target.source()
        outcome = dead_letters.redrive(aws.sqs(), target.name, target.url, source, select, dry_run=args.dry_run)
        verb, where = ("would redrive" if args.dry_run else "redriven"), f" to {source}"
    else:
        outcome = dead_letters.purge(aws.sqs(), target.name, target.url, select, dry_run=not args.yes)
        verb, where = ("would delete" if not args.yes else "deleted"), ""
    report(outcome, verb, out)
    print(
        f"# {target.name}: {verb} {len(outcome.done)}{where}; {len(outcome.left)} left, "
        f"{len(outcome.not_deleted)} not deleted, {len(outcome.not_found)} not found",
        file=out,
    )
    if args.command == "purge" and not args.yes and outcome.done:
        print("# nothing was deleted: add --yes to delete these records", file=out)
    if outcome.error:
        print(f"error: stopped: {outcome.error}", file=err)
    complete = not (outcome.left or outcome.not_deleted or outcome.not_found or outcome.error)
    return OK if complete else INCOMPLETE


def report(outcome: Outcome, verb: str, out: TextIO) -> None:
    def about(record: Record) -> str:
        return f"{record.message_id}  {record.reason.code}  | {dead_letters.summary_text(record.summary)}"

    for record in outcome.done:
        print(f"{verb}  {about(record)}", file=out)
    for record in outcome.left:
        print(
            f"left  {about(record)}  (its body was sent once by this run already: it failed again, or is a "
            "copy; run the command again once the cause is fixed)",
            file=out,
        )
    for record, error in outcome.not_deleted:
        print(f"sent, not deleted  {about(record)}  ({error}: redriving it again is harmless)", file=out)
    for message_id in outcome.not_found:
        print(f"not found  {message_id}  (redriven or deleted already?)", file=out)

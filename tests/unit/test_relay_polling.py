"""The relay's polling loop (the relay service's `poll`, which the handler runs), on a clock of its
own: after a failed round it waits longer, longer with every failed round in a row, and a round that
fails nothing starts again from the poll interval; every round's lag is published, also that of a
round whose events the bus refused."""

from __future__ import annotations

import json
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from inventory.errors import TemporarilyUnavailable
from inventory.services import outbox
from inventory.services.outbox import RelayRound
from tests.conftest import load_handler, template_environment

RUN_SECONDS = 60


class Scripted:
    """A relay whose rounds go as told, then find nothing to publish."""

    def __init__(self, *rounds: RelayRound | Exception) -> None:
        self.rounds = list(rounds)

    def run_once(self) -> RelayRound:
        if not self.rounds:
            return RelayRound(published=0, failed=0, oldest_pending_seconds=0.0)
        this = self.rounds.pop(0)
        if isinstance(this, Exception):
            raise this
        return this


class Run:
    """Time that passes only when the handler sleeps, and the Lambda context that reads it."""

    def __init__(self, stop_ms: int) -> None:
        self.now = 0.0
        self.waits: list[float] = []
        self._deadline_ms = stop_ms + RUN_SECONDS * 1000

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.waits.append(seconds)
        self.now += seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self._deadline_ms - self.now * 1000)

    # what Powertools' Logger reads of the context
    function_name = "relay"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:relay"
    memory_limit_in_mb = 256
    aws_request_id = "r-1"


@pytest.fixture
def relay_handler(cold_start: None, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    for name, value in template_environment("outbox_relay").items():
        monkeypatch.setenv(name, value)
    return load_handler("outbox_relay")


def run(handler: ModuleType, relay: Scripted, monkeypatch: pytest.MonkeyPatch) -> tuple[Run, dict[str, Any]]:
    clock = Run(handler.STOP_BEFORE_TIMEOUT_MS)
    monkeypatch.setattr(handler, "outbox_relay", lambda settings: relay)
    monkeypatch.setattr(outbox, "time", SimpleNamespace(sleep=clock.sleep))
    return clock, handler.lambda_handler({}, clock)


def emitted(out: str) -> dict[str, Any]:
    (document,) = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return dict(document)


def failing(failed: int, lag: float) -> RelayRound:
    return RelayRound(published=0, failed=failed, oldest_pending_seconds=lag)


def test_failed_rounds_wait_longer_each_time_and_a_clean_round_starts_again_from_the_poll_interval(
    relay_handler: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Given a bus that refuses everything for four rounds (after a round whose reads DynamoDB
    refused), then takes the backlog, then refuses once more, the waits grow under a doubling
    ceiling, a backlog goes on at once, and the failure after recovery waits as the first did."""
    relay = Scripted(
        TemporarilyUnavailable("DynamoDB is unavailable for now"),
        failing(5, 10.0),
        failing(5, 11.0),
        failing(5, 13.0),
        failing(5, 17.0),
        RelayRound(published=5, failed=0, oldest_pending_seconds=25.0),
        RelayRound(published=0, failed=0, oldest_pending_seconds=0.0),
        failing(1, 2.0),
    )
    pause = relay_handler.SETTINGS.relay_poll_interval_ms / 1000
    capsys.readouterr()

    clock, answer = run(relay_handler, relay, monkeypatch)

    w = clock.waits
    for n in range(5):  # the n-th failure in a row: the poll interval and up to pause * 2**n more
        assert pause <= w[n] <= pause * (1 + 2**n)
    assert (w[5], w[6]) == (0.0, pause)  # the backlog went out: go on at once, then poll
    assert pause <= w[7] <= 2 * pause  # a failure after a clean round waits as the first did
    assert set(w[8:-1]) == {pause}
    assert clock.now <= RUN_SECONDS  # never sleeps past the stop before the timeout
    metrics = emitted(capsys.readouterr().out)
    assert metrics["OutboxLagSeconds"][:7] == [10.0, 11.0, 13.0, 17.0, 25.0, 0.0, 2.0]  # also while refused
    assert (metrics["OutboxPublishFailures"], metrics["OutboxEventsPublished"]) == ([21.0], [5.0])
    assert (answer["published"], answer["failed"], answer["lag_seconds"]) == (5, 21, 25.0)


def test_the_waits_after_failures_stop_growing_at_the_cap(
    relay_handler: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    relay = Scripted(*(failing(1, float(n)) for n in range(30)))

    clock, _ = run(relay_handler, relay, monkeypatch)

    pause = relay_handler.SETTINGS.relay_poll_interval_ms / 1000
    assert max(clock.waits) <= pause + relay_handler.BACKOFF_CAP_SECONDS
    assert len(clock.waits) < RUN_SECONDS / pause / 2  # a failing bus is asked less often than every poll


def test_a_run_whose_every_round_failed_before_reading_the_outbox_publishes_no_lag_figure(
    relay_handler: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No figure at all is what the lag alarm takes as breaching (as when the relay does not run);
    a figure of 0 would say that nothing waits."""
    relay = Scripted(*(TemporarilyUnavailable("DynamoDB is unavailable for now") for _ in range(1000)))
    capsys.readouterr()

    _, answer = run(relay_handler, relay, monkeypatch)

    assert answer["lag_seconds"] is None
    assert "OutboxLagSeconds" not in emitted(capsys.readouterr().out)

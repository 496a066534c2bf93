"""Trying again: a step is retried after jittered, growing, capped waits, and given up for now."""

from __future__ import annotations

import random
import time

import pytest

from inventory.errors import TemporarilyUnavailable
from inventory.retry import LOST_RACE, UNPROCESSED, Backoff, retried


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(random, "random", lambda: 1.0)  # the longest wait each time
    return slept


def test_a_step_is_tried_until_it_has_a_result(waits: list[float]) -> None:
    answers = iter([None, None, "written"])

    assert retried(lambda: next(answers), Backoff(attempts=5, first_wait_s=0.1, most_wait_s=1.0), "never") == "written"
    assert waits == [0.1, 0.2]  # a wait after each attempt that had none


@pytest.mark.parametrize("policy", [LOST_RACE, UNPROCESSED], ids=["lost race", "unprocessed"])
def test_after_the_last_attempt_the_step_is_given_up_for_now_with_waits_that_grow_to_the_cap(
    waits: list[float], policy: Backoff
) -> None:
    tried = []

    with pytest.raises(TemporarilyUnavailable, match="gave up"):
        retried(lambda: tried.append(1), policy, "gave up")

    assert len(tried) == len(waits) == policy.attempts
    assert waits == sorted(waits)
    assert waits[0] == policy.first_wait_s
    assert max(waits) == policy.most_wait_s


def test_waits_are_jittered_below_their_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    monkeypatch.setattr(random, "random", iter([0.5, 0.25]).__next__)
    answers = iter([None, None, True])

    retried(lambda: next(answers), Backoff(attempts=3, first_wait_s=1.0, most_wait_s=10.0), "never")

    assert slept == [0.5, 0.5]  # half of 1 s, then a quarter of 2 s

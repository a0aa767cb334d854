"""scripts/chaos's books as pure functions: the longest stretch of refused purchases, the time to
recover, what counts as lost or doubled, and the JSON line's contract (its keys, and the exit)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from chaos.ledger import (  # noqa: E402  (scripts/ is not a package of the workspace)
    Books,
    judge,
    longest_outage,
    recovered_after,
    run_failed,
    summary_line,
)

CONTRACT_KEYS = [
    "scenarios", "passed", "lost_confirmed_bookings", "double_sold_seats", "double_charges",
    "lost_mails", "max_unavailable_s",
]  # fmt: skip


def clean_books(confirmed: set[str]) -> Books:
    return Books(frozenset(confirmed), Counter(dict.fromkeys(confirmed, 1)), 0, 0)


def test_no_failure_no_outage() -> None:
    assert longest_outage([(0.0, 0.2, True), (0.2, 0.4, True)]) == 0.0
    assert longest_outage([]) == 0.0


def test_an_outage_runs_from_the_first_failure_to_the_next_success() -> None:
    attempts = [
        (0.0, 0.1, True),
        (1.0, 1.1, False),  # refused from here ...
        (2.0, 2.1, False),
        (3.0, 3.2, True),  # ... to here: 2.2 s
        (4.0, 4.1, False),  # a lone failure: 0.3 s (until the next success)
        (4.2, 4.4, True),
    ]
    assert longest_outage(attempts) == pytest.approx(2.2)


def test_a_failure_that_began_before_the_last_success_counts_from_that_success() -> None:
    attempts = [(0.0, 9.0, False), (5.0, 5.1, True), (9.5, 10.0, True)]  # it hung 9 s, others did not
    assert longest_outage(attempts) == pytest.approx(10.0 - 5.1)


def test_failures_to_the_end_count_until_the_last_one() -> None:
    assert longest_outage([(0.0, 0.1, True), (1.0, 1.5, False), (2.0, 6.0, False)]) == pytest.approx(5.0)


def test_recovery_is_the_first_success_no_failure_follows() -> None:
    attempts = [(0.0, 0.1, True), (1.0, 1.1, False), (1.5, 1.6, True), (2.0, 2.1, False), (3.0, 3.5, True)]
    assert recovered_after(attempts, fault_at=1.0) == pytest.approx(2.5)
    assert recovered_after([(0.0, 0.1, True), (2.0, 2.1, True)], fault_at=1.0) == 0.0
    assert recovered_after([(0.0, 0.1, True), (2.0, 2.1, False)], fault_at=1.0) is None


def test_a_clean_scenario_passes() -> None:
    verdict = judge((1, "x"), [[(0.0, 0.1, True)]], {"b1"}, clean_books({"b1", "b2"}), 0.05, purchases=1)
    assert verdict.passed
    assert (verdict.lost_confirmed_bookings, verdict.lost_mails, verdict.duplicate_mails) == (0, 0, 0)


def test_lost_and_doubled_are_counted_and_fail_the_scenario() -> None:
    books = Books(frozenset({"b1", "b2"}), Counter({"b1": 2}), double_sold_seats=1, double_charges=1)
    verdict = judge((2, "x"), [[(0.0, 0.1, True)] * 3], {"b1", "b2", "b3"}, books, 0.0, purchases=3)
    assert verdict.lost_confirmed_bookings == 1  # b3: told succeeded, not confirmed
    assert verdict.lost_mails == 1  # b2: confirmed, no mail
    assert verdict.duplicate_mails == 1  # b1: mailed twice
    assert not verdict.passed


def test_a_scenario_whose_fault_was_not_made_or_never_recovered_fails() -> None:
    books = clean_books({"b1"})
    assert not judge((3, "x"), [[(0.0, 0.1, True)]], {"b1"}, books, None, purchases=1).passed
    never = [(0.0, 0.1, True), (1.0, 1.1, False)]
    assert not judge((3, "x"), [[(0.0, 0.1, True)], never], {"b1"}, books, 0.5, purchases=1).passed


def test_purchases_are_refused_while_either_step_is() -> None:
    bookings = [(0.0, 0.1, True), (1.0, 1.1, True), (5.0, 5.1, True)]
    payments = [
        (0.1, 0.2, True),
        (1.1, 1.2, False),
        (3.0, 3.1, False),
        (5.1, 5.3, True),
    ]  # one client retrying
    verdict = judge((5, "x"), [bookings, payments], {"b1"}, clean_books({"b1"}), 1.0, purchases=3)
    assert verdict.unavailable_s == pytest.approx(5.3 - 1.1)
    assert verdict.recovered_s == pytest.approx(5.3 - 1.0)


def test_the_json_line_has_the_contract_keys_and_decides_the_exit() -> None:
    stream = [(0.0, 0.1, True), (1.0, 2.0, False), (2.5, 2.6, True)]
    good = judge((1, "x"), [stream], {"b1"}, clean_books({"b1"}), 0.5, purchases=3)
    line = summary_line(2, [good, good])
    summary = json.loads(line)
    assert list(summary) == CONTRACT_KEYS and "\n" not in line
    assert summary["scenarios"] == summary["passed"] == 2
    assert summary["max_unavailable_s"] == pytest.approx(1.6)
    assert not run_failed(summary)
    assert run_failed(json.loads(summary_line(3, [good, good])))  # a scenario that never ran
    assert run_failed(summary | {"lost_mails": 1})

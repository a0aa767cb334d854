"""The books of a scenario, as pure functions: what the clients were told against what the
databases and the mail catcher hold, the longest time purchases failed, and the JSON line."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# (started, finished, succeeded) of one purchase, on one monotonic clock
Attempt = tuple[float, float, bool]


def longest_outage(attempts: Iterable[Attempt]) -> float:
    """The longest stretch, in seconds, in which purchases failed and none succeeded.

    A stretch begins when the first failing purchase of a run of failures began (or when the
    last success before it finished, if that was later: a failure that began earlier was
    still waiting then), and ends when the next purchase succeeds, or with the last failure
    if none did. A lone failure between successes still counts, as the time it cost."""
    longest, begun, last_success, last_finish = 0.0, None, None, 0.0
    for started, finished, succeeded in sorted(attempts, key=lambda attempt: attempt[1]):
        last_finish = max(last_finish, finished)
        if succeeded:
            if begun is not None:
                longest = max(longest, finished - begun)
            begun, last_success = None, finished
            continue
        start = started if last_success is None else max(started, last_success)
        begun = start if begun is None else min(begun, start)
    if begun is not None:
        longest = max(longest, last_finish - begun)
    return longest


def recovered_after(attempts: Iterable[Attempt], fault_at: float) -> float | None:
    """Seconds from the fault to the first success that no failure follows (0 when nothing
    failed after the fault); None when the last purchase failed (it never recovered)."""
    ordered = sorted(attempts, key=lambda attempt: attempt[1])
    failures = [finished for _, finished, succeeded in ordered if not succeeded and finished >= fault_at]
    if not failures:
        return 0.0
    after = [finished for _, finished, succeeded in ordered if succeeded and finished > failures[-1]]
    return after[0] - fault_at if after else None


@dataclass(frozen=True)
class Books:
    """What the stores hold for one scenario's showtime, read after the settle."""

    confirmed: frozenset[str]  # booking ids confirmed in booking's database
    mails: Counter[str]  # tickets mails in the catcher per booking id
    double_sold_seats: int  # seats held or sold to two bookings (database)
    double_charges: int  # bookings paid twice, or charged twice at the provider


@dataclass(frozen=True)
class Verdict:
    number: int
    name: str
    purchases: int
    succeeded: int
    lost_confirmed_bookings: int  # told succeeded, not confirmed
    lost_mails: int  # confirmed, no tickets mail
    duplicate_mails: int  # confirmed, mailed more than once
    double_sold_seats: int
    double_charges: int
    unavailable_s: float
    recovered_s: float | None
    fault_made: bool

    @property
    def passed(self) -> bool:
        """Nothing lost or doubled, and purchases succeeded again after the fault."""
        broken = self.lost_confirmed_bookings + self.lost_mails + self.duplicate_mails
        broken += self.double_sold_seats + self.double_charges
        return broken == 0 and self.fault_made and self.succeeded > 0 and self.recovered_s is not None


def judge(
    scenario: tuple[int, str], attempts: list[Attempt], told: set[str], books: Books, fault_at: float | None
) -> Verdict:
    """``told``: the booking ids whose clients were told the purchase succeeded; ``fault_at``
    None when the fault could not be made."""
    number, name = scenario
    return Verdict(
        number=number,
        name=name,
        purchases=len(attempts),
        succeeded=len(told),
        lost_confirmed_bookings=len(told - books.confirmed),
        lost_mails=sum(1 for booking in books.confirmed if books.mails[booking] == 0),
        duplicate_mails=sum(1 for booking in books.confirmed if books.mails[booking] > 1),
        double_sold_seats=books.double_sold_seats,
        double_charges=books.double_charges,
        unavailable_s=longest_outage(attempts),
        recovered_s=recovered_after(attempts, fault_at or 0.0),
        fault_made=fault_at is not None,
    )


def summary_line(planned: int, verdicts: list[Verdict]) -> str:
    """The run's last line: one JSON object, the figures summed (the worst outage) over the scenarios."""
    return json.dumps(
        {
            "scenarios": planned,
            "passed": sum(1 for verdict in verdicts if verdict.passed),
            "lost_confirmed_bookings": sum(v.lost_confirmed_bookings for v in verdicts),
            "double_sold_seats": max((v.double_sold_seats for v in verdicts), default=0),
            "double_charges": max((v.double_charges for v in verdicts), default=0),
            "lost_mails": sum(v.lost_mails for v in verdicts),
            "max_unavailable_s": round(max((v.unavailable_s for v in verdicts), default=0.0), 1),
        }
    )


def run_failed(summary: dict[str, float]) -> bool:
    """A run fails when a scenario failed (or never ran) or anything was lost or doubled."""
    broken = ("lost_confirmed_bookings", "double_sold_seats", "double_charges", "lost_mails")
    return summary["passed"] < summary["scenarios"] or any(summary[key] for key in broken)

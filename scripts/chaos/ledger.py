"""The books of a scenario, as pure functions: what the clients were told against what the
databases and the mail catcher hold, the longest time purchases were refused, and the JSON line.

Refusals are read per step of the purchase: the bookings and the payments are each a stream of
requests (a payment retried after a 503 is one request per try), and purchases are refused
while either stream is refused. A client that retries its payment through a 10 s outage
succeeds in the end, yet the payments were refused for those 10 s."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

# (sent, answered, accepted) of one request, on one monotonic clock
Attempt = tuple[float, float, bool]


def longest_outage(attempts: Iterable[Attempt]) -> float:
    """The longest stretch, in seconds, in which requests of one stream were refused and none
    was accepted.

    A stretch begins when the first refused request of a run of refusals was sent (or when the
    last accepted one before it was answered, if that was later: a request sent earlier was
    still waiting then), and ends when the next request is accepted, or with the last refusal
    if none was. A lone refusal between acceptances still counts, as the time it cost."""
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
    """Seconds from the fault to the first accepted request that no refusal follows (0 when
    nothing was refused after the fault); None when the last request was refused."""
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


def worst_recovery(streams: list[list[Attempt]], fault_at: float) -> float | None:
    """The stream that took longest to recover (None if one never did)."""
    each = [recovered_after(stream, fault_at) for stream in streams]
    return None if None in each else max((seconds or 0.0 for seconds in each), default=0.0)


def judge(
    scenario: tuple[int, str],
    streams: list[list[Attempt]],
    told: set[str],
    books: Books,
    fault_at: float | None,
    purchases: int,
) -> Verdict:
    """``streams``: the requests of each step (bookings, payments); ``told``: the booking ids
    whose clients were told the purchase succeeded; ``fault_at`` None when the fault could not
    be made."""
    number, name = scenario
    return Verdict(
        number=number,
        name=name,
        purchases=purchases,
        succeeded=len(told),
        lost_confirmed_bookings=len(told - books.confirmed),
        lost_mails=sum(1 for booking in books.confirmed if books.mails[booking] == 0),
        duplicate_mails=sum(1 for booking in books.confirmed if books.mails[booking] > 1),
        double_sold_seats=books.double_sold_seats,
        double_charges=books.double_charges,
        unavailable_s=max((longest_outage(stream) for stream in streams), default=0.0),
        recovered_s=worst_recovery(streams, fault_at or 0.0),
        fault_made=fault_at is not None,
    )


def summary_line(planned: int, verdicts: list[Verdict]) -> str:
    """The run's last line: one JSON object. Lost bookings and mails are summed over the
    scenarios; the double counts (read database-wide) and the outage are the worst reading."""
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

"""Events: the envelope, the transactional outbox, its relay, and the consumer base."""

from servicekit.events.envelope import EventEnvelope, new_event
from servicekit.events.outbox import OutboxWakeup, add_event, outbox_table, processed_events_table

__all__ = [
    "EventEnvelope",
    "OutboxWakeup",
    "add_event",
    "new_event",
    "outbox_table",
    "processed_events_table",
]

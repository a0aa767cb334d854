"""Events: the envelope, the transactional outbox, its relay, and the consumer base."""

from servicekit.events.envelope import EventEnvelope, new_event
from servicekit.events.outbox import (
    OutboxInsert,
    OutboxWakeup,
    add_event,
    hot_outbox_insert_per_row,
    outbox_args,
    outbox_insert_per_row,
    outbox_row,
    outbox_table,
    processed_events_table,
)

__all__ = [
    "EventEnvelope",
    "OutboxInsert",
    "OutboxWakeup",
    "add_event",
    "hot_outbox_insert_per_row",
    "new_event",
    "outbox_args",
    "outbox_insert_per_row",
    "outbox_row",
    "outbox_table",
    "processed_events_table",
]

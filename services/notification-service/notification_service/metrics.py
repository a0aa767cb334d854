"""notification-service business metrics."""

from __future__ import annotations

from prometheus_client import Counter

NOTIFICATIONS = Counter(
    "notifications_total",
    "Notification delivery attempts by channel, template and outcome (sent, failed, retried)",
    ["channel", "template", "outcome"],
)

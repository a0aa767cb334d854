"""Payment providers: the interface a real acquirer implements, and the simulated one."""

from payment_service.providers.base import (
    ABANDONED,
    ChargeRequest,
    ChargeResult,
    PaymentProvider,
    ProviderUnavailable,
    RefundRequest,
    RefundResult,
)
from payment_service.providers.simulated import SimulatedProvider

__all__ = [
    "ABANDONED",
    "ChargeRequest",
    "ChargeResult",
    "PaymentProvider",
    "ProviderUnavailable",
    "RefundRequest",
    "RefundResult",
    "SimulatedProvider",
]

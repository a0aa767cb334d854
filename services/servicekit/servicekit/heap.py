"""The cyclic garbage collector, set for a long-running service.

Measured on the booking hot path (docs/benchmarks.md): with Python's defaults a full
collection walked the ~190,000 objects made at start-up (modules, routes, SQLAlchemy
and pydantic machinery) every ~2 s under load and held the event loop for 140-230 ms
each time, which was most of POST /book's p99. Two changes remove that:

- ``gc.freeze()`` once start-up is done moves every live object to a generation the
  collector never walks again. They live as long as the process anyway.
- a young collection waits for ``gc_gen0_threshold`` new container objects instead of
  700, so the objects of requests still in flight are not promoted to the old
  generations a hundred times a second (promoted ones are what trigger full passes).
"""

from __future__ import annotations

import gc
import logging

from servicekit.config import ServiceSettings

logger = logging.getLogger("servicekit.heap")
GEN1_THRESHOLD, GEN2_THRESHOLD = 20, 100


def settle_after_startup(settings: ServiceSettings) -> None:
    """Collect start-up's garbage, freeze what is left, and space out the young collections."""
    gc.set_threshold(settings.gc_gen0_threshold, GEN1_THRESHOLD, GEN2_THRESHOLD)
    if settings.gc_freeze_after_startup:
        gc.collect()
        gc.freeze()
    logger.debug("gc thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())

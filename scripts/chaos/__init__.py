"""scripts/chaos.sh: an HA topology of private processes, five node failures under a steady
purchase load, and the books checked after each (see docs/operations.md, "chaos.sh")."""

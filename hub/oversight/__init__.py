"""Oversight: reviewing the audit trail, propagating record notices to partner hubs, and the
annual public transparency report.

- ``trail``         the entries one auditor may read over a window (``auditEvents``' scope).
- ``review``        ``review_trail`` → ``ReviewReport``: findings, each linked to its entries.
- ``notices``       which partner hubs were shown a record (from the trail), to send them an
                    expungement or sealing notice.
- ``transparency``  ``hub report transparency``: counts with small cells suppressed, as HTML,
                    CSV and PDF (imported by the command only: it needs matplotlib).
"""

from hub.oversight.review import (
    EntryRef,
    Finding,
    FindingKind,
    ReviewFacts,
    ReviewReport,
    Thresholds,
    review_entries,
    review_trail,
    robust_z,
)
from hub.oversight.trail import scoped_entries

__all__ = [
    "EntryRef",
    "Finding",
    "FindingKind",
    "ReviewFacts",
    "ReviewReport",
    "Thresholds",
    "review_entries",
    "review_trail",
    "robust_z",
    "scoped_entries",
]

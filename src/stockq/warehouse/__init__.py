"""The warehouse ledger: products, warehouses, documents and their posting, stock totals.

Modules: ``models`` (tables), ``products`` and ``warehouses`` (master data), ``documents`` (create, post, cancel,
numbering, stocktaking), ``stock`` (levels, recalculation), ``hooks`` (stock-changed listeners), ``items_file``
(reading ``--items`` files). This package knows nothing of the job queue: integrations listen on ``hooks``.
"""

from __future__ import annotations

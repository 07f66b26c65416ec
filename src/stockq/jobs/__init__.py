"""stockq's own job classes: the only place where the domain packages meet the queue.

Importing this package registers every built-in job (under the manual's names) in the default registry.
"""

from __future__ import annotations

from stockq.jobs import imports as imports_jobs  # noqa: F401
from stockq.jobs import integrations as integrations_jobs  # noqa: F401

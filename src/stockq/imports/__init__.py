"""CSV/XML product imports: profiles, safe streaming parsers, fetching, and the run that applies a feed."""

from __future__ import annotations

"""Streaming feed parsers: CSV (feeds.csv) and XML (feeds.xml), and the built-in XML presets."""

from __future__ import annotations

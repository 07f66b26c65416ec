"""Integrations with online shops: PrestaShop's webservice client and emulator, product links, inventory sync."""

from __future__ import annotations

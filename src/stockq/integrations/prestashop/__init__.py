"""PrestaShop's legacy webservice (`/api`): safe XML, an httpx client, and an emulator for tests."""

from __future__ import annotations

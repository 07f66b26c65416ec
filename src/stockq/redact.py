"""Keep secrets (API keys) out of everything stockq writes: output, logs, sync logs, failed-job exceptions."""

from __future__ import annotations

import re
import threading

MASK = "********"
_secrets: set[str] = set()
_lock = threading.Lock()
# Credentials that may travel in URLs or headers even when they were never registered.
_PATTERNS = [
    re.compile(r"(?i)(ws_key=)[^&\s'\"<>]+"),
    re.compile(r"(?i)(authorization:\s*basic\s+)[A-Za-z0-9+/=]+"),
    re.compile(r"(?i)(https?://)[^/\s:@]+(?::[^/\s@]*)?@"),
]


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever redact() sees it from now on (ignores values too short to be secrets)."""
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret and credential-looking fragment masked."""
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + MASK + ("@" if m.group(0).endswith("@") else ""), text)
    return text

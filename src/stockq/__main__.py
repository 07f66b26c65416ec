from __future__ import annotations

from stockq.cli import main

main()

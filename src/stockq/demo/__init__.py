"""The quick start: the whole system end to end on a fresh SQLite file, through the real commands and jobs."""

"""Import profiles: what to read (source, format, parsing options, mapping) and when (interval, next_run_at).

Options (JSON on the profile) for CSV: ``delimiter`` (default: detected), ``encoding`` (default: detected),
``quotechar``, ``header`` (bool), ``decimal`` (``,``, ``.`` or ``auto``), ``thousands`` (a separator or ``auto``).
For XML: ``records`` (record tags) and ``namespaces`` (prefix → URI). For URLs: ``connect_timeout``,
``read_timeout`` (seconds), ``max_bytes``, ``max_redirects``. A preset fills the XML options and the mapping; an
explicit ``--map`` overrides the preset's field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from stockq import errors
from stockq.imports import models
from stockq.imports.feeds import PRODUCT_FIELDS, FeedError
from stockq.imports.feeds.presets import preset as get_preset
from stockq.imports.fetch import check_source, describe
from stockq.warehouse._sql import utcnow

FORMATS = ("csv", "xml")
MATCH_KEYS = ("sku", "ean")
OPTION_KEYS = {
    "delimiter",
    "encoding",
    "quotechar",
    "header",
    "decimal",
    "thousands",
    "records",
    "namespaces",
    "connect_timeout",
    "read_timeout",
    "max_bytes",
    "max_redirects",
    "ignore_negative_quantity",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    """One import profile."""

    id: int
    name: str
    source: str
    format: str
    preset: str | None
    options: dict[str, Any]
    mapping: dict[str, str]
    match_key: str
    stock_warehouse: str | None
    interval_minutes: int
    active: bool
    next_run_at: datetime | None
    last_run_at: datetime | None
    job_queued_at: datetime | None
    etag: str | None
    last_modified: str | None

    @property
    def source_label(self) -> str:
        """The source without credentials or query string."""
        return describe(self.source)

    def effective(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Options and mapping with the preset's defaults filled in (the profile's own values win)."""
        options: dict[str, Any] = {}
        mapping: dict[str, str] = {}
        if self.preset:
            chosen = get_preset(self.preset)
            options.update(chosen.options)
            options["records"] = list(chosen.records)
            options["namespaces"] = dict(chosen.namespaces)
            mapping.update(chosen.mapping)
        options.update(self.options)
        mapping.update(self.mapping)
        return options, {k: v for k, v in mapping.items() if v}  # an empty path switches a preset's field off


def _from_row(row: sa.Row[Any]) -> Profile:
    m = row._mapping
    return Profile(
        id=int(m["id"]),
        name=m["name"],
        source=m["source"],
        format=m["format"],
        preset=m["preset"],
        options=json.loads(m["options"] or "{}"),
        mapping=json.loads(m["mapping"] or "{}"),
        match_key=m["match_key"],
        stock_warehouse=m["stock_warehouse"],
        interval_minutes=int(m["interval_minutes"]),
        active=bool(m["active"]),
        next_run_at=m["next_run_at"],
        last_run_at=m["last_run_at"],
        job_queued_at=m["job_queued_at"],
        etag=m["etag"],
        last_modified=m["last_modified"],
    )


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    """``["sku=Kod", "name=Nazwa"]`` → ``{"sku": "Kod", "name": "Nazwa"}``; InvalidInput for a malformed pair."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise errors.InvalidInput(f"{what} must look like key=value, not {pair!r}")
        result[key.strip()] = value.strip()
    return result


def _validate(
    *,
    name: str,
    source: str,
    fmt: str,
    preset: str | None,
    options: Mapping[str, Any],
    mapping: Mapping[str, str],
    match_key: str,
    interval_minutes: int,
    import_root: Path,
) -> None:
    if not name.strip() or len(name) > 255:
        raise errors.InvalidInput("A profile needs a name of 1 to 255 characters")
    if fmt not in FORMATS:
        raise errors.InvalidInput(f"Format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if match_key not in MATCH_KEYS:
        raise errors.InvalidInput(f"Match key must be one of {', '.join(MATCH_KEYS)}, not {match_key!r}")
    if interval_minutes < 1:
        raise errors.InvalidInput("The interval must be at least 1 minute")
    unknown_fields = sorted(set(mapping) - set(PRODUCT_FIELDS))
    if unknown_fields:
        raise errors.InvalidInput(
            f"Unknown product field(s) {', '.join(unknown_fields)}; known: {', '.join(PRODUCT_FIELDS)}"
        )
    unknown_options = sorted(set(options) - OPTION_KEYS)
    if unknown_options:
        raise errors.InvalidInput(f"Unknown option(s) {', '.join(unknown_options)}")
    if preset:
        chosen = get_preset(preset)
        if chosen.format != fmt:
            raise errors.InvalidInput(f"Preset {chosen.name} is for {chosen.format} feeds, not {fmt}")
    elif fmt == "xml":
        if not options.get("records"):
            raise errors.InvalidInput("An XML profile needs a preset or a record tag (--record)")
        if "sku" not in mapping and "ean" not in mapping:
            raise errors.InvalidInput("An XML profile needs a preset or a mapping for sku or ean (--map sku=PATH)")
    if match_key == "ean" and not preset and fmt == "xml" and "ean" not in mapping:
        raise errors.InvalidInput("Matching by EAN needs a mapping for ean")
    delimiter = options.get("delimiter")
    if delimiter is not None and len(str(delimiter)) != 1:
        raise errors.InvalidInput("The delimiter must be one character")
    if options.get("encoding"):
        import codecs

        try:
            codecs.lookup(str(options["encoding"]))
        except LookupError:
            raise errors.InvalidInput(f"Unknown encoding {options['encoding']!r}") from None
    try:
        check_source(source, import_root)
    except FeedError as exc:
        raise errors.InvalidInput(exc.message) from None


def add_profile(
    conn: Connection,
    name: str,
    *,
    source: str,
    format: str,
    import_root: Path,
    preset: str | None = None,
    options: Mapping[str, Any] | None = None,
    mapping: Mapping[str, str] | None = None,
    match_key: str = "sku",
    stock_warehouse: str | None = None,
    interval_minutes: int = 60,
    active: bool = True,
) -> Profile:
    """Create a profile, due at once; InvalidInput for a bad definition or a name in use."""
    fmt = format.lower()
    options = dict(options or {})
    mapping = dict(mapping or {})
    _validate(
        name=name,
        source=source,
        fmt=fmt,
        preset=preset,
        options=options,
        mapping=mapping,
        match_key=match_key,
        interval_minutes=interval_minutes,
        import_root=import_root,
    )
    table = models.import_profiles
    if conn.execute(sa.select(table.c.id).where(table.c.name == name)).first() is not None:
        raise errors.InvalidInput(f"Import profile {name} already exists")
    now = utcnow()
    conn.execute(
        table.insert().values(
            name=name,
            source=source,
            format=fmt,
            preset=preset.lower() if preset else None,
            options=json.dumps(options, sort_keys=True),
            mapping=json.dumps(mapping, sort_keys=True),
            match_key=match_key,
            stock_warehouse=stock_warehouse,
            interval_minutes=interval_minutes,
            active=active,
            next_run_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    return get_profile(conn, name)


def get_profile(conn: Connection, name_or_id: str | int) -> Profile:
    """The profile with this name (or numeric id); NotFound otherwise."""
    table = models.import_profiles
    row = conn.execute(sa.select(table).where(table.c.name == str(name_or_id))).first()
    if row is None and str(name_or_id).isdigit():
        row = conn.execute(sa.select(table).where(table.c.id == int(name_or_id))).first()
    if row is None:
        raise errors.NotFound(f"No import profile {name_or_id}")
    return _from_row(row)


def list_profiles(conn: Connection) -> list[Profile]:
    """Every profile, by name."""
    table = models.import_profiles
    return [_from_row(row) for row in conn.execute(sa.select(table).order_by(table.c.name))]


def edit_profile(
    conn: Connection,
    name_or_id: str | int,
    *,
    import_root: Path,
    source: str | None = None,
    format: str | None = None,
    preset: str | None = None,
    options: Mapping[str, Any] | None = None,
    mapping: Mapping[str, str] | None = None,
    match_key: str | None = None,
    stock_warehouse: str | None = None,
    interval_minutes: int | None = None,
    active: bool | None = None,
    rename: str | None = None,
) -> Profile:
    """Change the given attributes (options and mapping are merged key by key; an empty value removes a key)."""
    current = get_profile(conn, name_or_id)
    merged_options = {**current.options, **(options or {})}
    merged_options = {k: v for k, v in merged_options.items() if v not in ("", None)}
    merged_mapping = {**current.mapping, **(mapping or {})}
    if not new_preset_keeps(current.preset if preset is None else preset):
        merged_mapping = {k: v for k, v in merged_mapping.items() if v}
    new_name = rename or current.name
    new_source = source or current.source
    new_format = (format or current.format).lower()
    new_preset = current.preset if preset is None else (preset.lower() or None)
    new_match = match_key or current.match_key
    new_interval = interval_minutes or current.interval_minutes
    _validate(
        name=new_name,
        source=new_source,
        fmt=new_format,
        preset=new_preset,
        options=merged_options,
        mapping=merged_mapping,
        match_key=new_match,
        interval_minutes=new_interval,
        import_root=import_root,
    )
    table = models.import_profiles
    if new_name != current.name and conn.execute(sa.select(table.c.id).where(table.c.name == new_name)).first():
        raise errors.InvalidInput(f"Import profile {new_name} already exists")
    values: dict[str, Any] = {
        "name": new_name,
        "source": new_source,
        "format": new_format,
        "preset": new_preset,
        "options": json.dumps(merged_options, sort_keys=True),
        "mapping": json.dumps(merged_mapping, sort_keys=True),
        "match_key": new_match,
        "interval_minutes": new_interval,
        "updated_at": utcnow(),
    }
    if stock_warehouse is not None:
        values["stock_warehouse"] = stock_warehouse or None
    if active is not None:
        values["active"] = active
    if new_source != current.source:
        values["etag"] = None
        values["last_modified"] = None
    conn.execute(table.update().where(table.c.id == current.id).values(**values))
    return get_profile(conn, current.id)


def new_preset_keeps(preset: str | None) -> bool:
    """With a preset, an empty mapping value is kept: it switches the preset's field off."""
    return bool(preset)


def remove_profile(conn: Connection, name_or_id: str | int) -> Profile:
    """Delete a profile with its run history; NotFound if it does not exist."""
    profile = get_profile(conn, name_or_id)
    runs = models.import_runs
    run_ids = sa.select(runs.c.id).where(runs.c.profile_id == profile.id).scalar_subquery()
    conn.execute(models.import_rejections.delete().where(models.import_rejections.c.run_id.in_(run_ids)))
    conn.execute(runs.delete().where(runs.c.profile_id == profile.id))
    conn.execute(models.import_prices.delete().where(models.import_prices.c.profile_id == profile.id))
    conn.execute(models.import_profiles.delete().where(models.import_profiles.c.id == profile.id))
    return profile


def next_run_after(moment: datetime, interval_minutes: int) -> datetime:
    """When a profile run at ``moment`` is due again."""
    return moment + timedelta(minutes=interval_minutes)


def due_profiles(conn: Connection, now: datetime, *, stale_after: timedelta) -> list[Profile]:
    """Active profiles with ``next_run_at <= now`` and no job queued or running (a marker older than
    ``stale_after`` counts as lost). Rows are locked on PostgreSQL (skipping ones another caller holds), so two
    concurrent schedulers cannot both take a profile; SQLite transactions are serialised anyway."""
    table = models.import_profiles
    query = (
        sa.select(table)
        .where(
            table.c.active.is_(True),
            table.c.next_run_at <= now,
            sa.or_(table.c.job_queued_at.is_(None), table.c.job_queued_at < now - stale_after),
        )
        .order_by(table.c.next_run_at, table.c.id)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return [_from_row(row) for row in conn.execute(query)]


def mark_queued(conn: Connection, profile: Profile, now: datetime) -> None:
    """Record that a job was queued for ``profile`` and move its next run on by its interval."""
    table = models.import_profiles
    conn.execute(
        table.update()
        .where(table.c.id == profile.id)
        .values(job_queued_at=now, next_run_at=next_run_after(now, profile.interval_minutes))
    )


def clear_queued(conn: Connection, profile_id: int) -> None:
    """The profile's job finished (or failed for good): run-imports may queue it again when it is due."""
    table = models.import_profiles
    conn.execute(table.update().where(table.c.id == profile_id).values(job_queued_at=None))

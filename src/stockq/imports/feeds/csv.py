"""Streaming CSV reader with the habits of Polish exports: encoding and delimiter detection, RFC 4180 quoting.

Encoding: a UTF-8 BOM wins; otherwise the whole file is checked as strict UTF-8 (an incremental decoder over 1 MiB
chunks, constant memory) and, if that fails, read as Windows-1250 (Excel's ANSI code page on Polish Windows).
Delimiter: the one of ``, ; tab |`` that occurs most often outside quotes in the header line.
A field or line longer than ``MAX_FIELD_CHARS`` fails the run (usually an unbalanced quote swallowing the rest of the
file); a row with the wrong number of fields or a NUL byte is rejected with its line number; cells are text and are
never evaluated, so ``=SUM(A1)`` stays a string.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from itertools import islice
from operator import itemgetter
from pathlib import Path
from typing import IO, Any

from stockq.imports.feeds import PRODUCT_FIELDS, BadRecord, FeedError, RawRecord, RecordBatch
from stockq.imports.feeds.presets import csv_mapping_from_header

DELIMITERS = (",", ";", "\t", "|")
MAX_FIELD_CHARS = 1_048_576
_CHUNK = 1 << 20
_UTF8_BOM = codecs.BOM_UTF8


def detect_encoding(path: Path) -> str:
    """``utf-8-sig`` with a BOM, ``utf-8`` when every byte decodes strictly, else ``cp1250``."""
    with path.open("rb") as raw:
        head = raw.read(len(_UTF8_BOM))
        if head == _UTF8_BOM:
            return "utf-8-sig"
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        try:
            decoder.decode(head)
            while chunk := raw.read(_CHUNK):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "cp1250"
    return "utf-8"


def detect_delimiter(header_line: str, quotechar: str = '"') -> str:
    """The candidate delimiter occurring most often outside quotes in ``header_line`` (``,`` when none does)."""
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for char in header_line:
        if char == quotechar:
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)")


def _capped_lines(text: IO[str], chunk_chars: int = _CHUNK) -> Iterator[str]:
    """Lines of ``text`` with their endings (``\n``, ``\r\n`` or ``\r``, as ``readline`` with ``newline=""``
    splits them), failing on one longer than the field limit instead of reading it whole into memory.

    The text is read in chunks and split by C code (``splitlines``, or a regular expression when a chunk holds one
    of the other characters that ``splitlines`` splits at): a per-line ``readline`` loop cost a million-row
    import about a second."""
    line_no = 0
    pending = ""
    while chunk := text.read(chunk_chars):
        data = pending + chunk if pending else chunk
        cut = max(data.rfind("\n"), data.rfind("\r"))
        if cut == len(data) - 1 and data[cut] == "\r":  # perhaps the first half of a \r\n
            cut = max(data.rfind("\n", 0, cut), data.rfind("\r", 0, cut))
        complete, pending = data[: cut + 1], data[cut + 1 :]
        if complete:
            lines = complete.splitlines(True)
            if len(lines) != complete.count("\n") + complete.count("\r") - complete.count("\r\n"):
                lines = _LINE.findall(complete)  # splitlines() also split at \x0b, \x1c, \u2028…
            if max(map(len, lines)) > MAX_FIELD_CHARS:
                for index, line in enumerate(lines):
                    if len(line.rstrip("\r\n")) > MAX_FIELD_CHARS:
                        raise _too_long(line_no + index + 1)
            line_no += len(lines)
            yield from lines
        if len(pending) > MAX_FIELD_CHARS:
            raise _too_long(line_no + 1)
    if pending:
        yield pending


def _too_long(line_no: int) -> FeedError:
    return FeedError(f"Line {line_no} is longer than {MAX_FIELD_CHARS} characters (broken quoting?)")


def read_csv(
    binary: IO[bytes],
    *,
    mapping: Mapping[str, str],
    encoding: str,
    delimiter: str | None = None,
    quotechar: str = '"',
    header: bool = True,
) -> Iterator[RawRecord | BadRecord]:
    """Yield the mapped fields of every data row of ``binary`` (see the module docstring).

    ``mapping`` maps product fields to column names (matched case-insensitively) or, without a header row, to
    1-based column numbers; with a header, fields left unmapped take a column with their usual name (sku, nazwa…).
    """
    with _csv_errors(encoding):
        # The wrapper is kept here: freed when the reader runs out, it would close ``binary`` under the caller.
        text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
        opened = _open_rows(text, mapping, delimiter, quotechar, header)
        if opened is None:
            return
        reader, columns, width = opened
        fields = list(columns.items())
        for row in reader:
            if not row:
                continue
            line_no = reader.line_num
            problem = _row_problem(row, width, line_no)
            if problem is not None:
                yield BadRecord(line_no, problem)
                continue
            try:
                values = {field: row[index] for field, index in fields}
            except IndexError:
                yield BadRecord(line_no, f"line {line_no}: too few fields ({len(row)})")
                continue
            yield RawRecord(line_no, values)


def read_csv_batches(
    binary: IO[bytes],
    *,
    mapping: Mapping[str, str],
    encoding: str,
    delimiter: str | None = None,
    quotechar: str = '"',
    header: bool = True,
    batch_size: int = 2000,
) -> Iterator[RecordBatch]:
    """``read_csv`` in batches, with the same records, line numbers and rejections, but without Python work per
    row in the common case (every record on one line, of the expected width, without NUL bytes): rows are taken
    by ``islice`` and picked by ``itemgetter``. A batch's ``fields`` are the mapped ones, in ``PRODUCT_FIELDS``
    order."""
    with _csv_errors(encoding):
        # The wrapper is kept here: freed when the reader runs out, it would close ``binary`` under the caller.
        text = io.TextIOWrapper(binary, encoding=encoding, errors="strict", newline="")
        opened = _open_rows(text, mapping, delimiter, quotechar, header)
        if opened is None:
            return
        reader, columns, width = opened
        fields = tuple(name for name in PRODUCT_FIELDS if name in columns)
        indices = [columns[name] for name in fields]
        pick: Any = itemgetter(*indices) if len(indices) > 1 else (lambda row: (row[indices[0]],))
        needed = max(indices) + 1 if indices else 0
        while True:
            start = reader.line_num
            chunk = list(islice(reader, batch_size))
            if not chunk:
                return
            end = reader.line_num
            lengths = set(map(len, chunk))
            if (
                end - start == len(chunk)
                and ((width and lengths == {width}) or (not width and min(lengths) >= max(needed, 1)))
                and "\x00" not in "".join(map("".join, chunk))
            ):
                yield RecordBatch(fields, range(start + 1, end + 1), list(map(pick, chunk)))
            else:
                yield _checked_batch(fields, chunk, start, width, pick)


@contextmanager
def _csv_errors(encoding: str) -> Iterator[None]:
    """Decoding and quoting errors, raised while rows are read, as one-line FeedErrors."""
    try:
        yield
    except UnicodeDecodeError as exc:
        raise FeedError(f"The file is not valid {encoding}: {exc.reason} (set the encoding on the profile)") from None
    except csv.Error as exc:
        raise FeedError(f"Malformed CSV: {exc}") from None


def _open_rows(
    text: IO[str],
    mapping: Mapping[str, str],
    delimiter: str | None,
    quotechar: str,
    header: bool,
) -> tuple[Any, dict[str, int], int] | None:
    """A csv reader past the header, the column index per mapped field and the expected row width (0: unknown);
    None for an empty file."""
    csv.field_size_limit(MAX_FIELD_CHARS)  # deliberate: a longer field is broken quoting, not data
    lines = _capped_lines(text)
    first = next(lines, None)
    if first is None:
        return None
    if delimiter is None:
        delimiter = detect_delimiter(first, quotechar)
    reader: Any = csv.reader(_chain(first, lines), delimiter=delimiter, quotechar=quotechar, strict=True)
    columns = _columns(reader, mapping, header)
    width = columns.pop("__width__")
    return reader, columns, width


def _row_problem(row: list[str], width: int, line_no: int) -> str | None:
    """Why a data row cannot be read (wrong width, NUL byte), or None."""
    if width and len(row) != width:
        return f"line {line_no}: {len(row)} fields, expected {width}"
    if "\x00" in "".join(row):
        return f"line {line_no}: contains a NUL byte"
    return None


def _checked_batch(fields: tuple[str, ...], chunk: list[list[str]], start: int, width: int, pick: Any) -> RecordBatch:
    """The rows of ``chunk`` checked one by one as ``read_csv`` does; a record's line number (its last line, like
    ``csv.reader.line_num``) counts the line breaks inside its quoted fields and the blank lines before it."""
    batch = RecordBatch(fields, [], [])
    numbers: list[int] = []
    line_no = start
    for row in chunk:
        line_no += 1 + sum(_line_breaks(value) for value in row)
        if not row:
            continue
        problem = _row_problem(row, width, line_no)
        if problem is not None:
            batch.rejected.append(BadRecord(line_no, problem))
            continue
        try:
            picked = pick(row)
        except IndexError:
            batch.rejected.append(BadRecord(line_no, f"line {line_no}: too few fields ({len(row)})"))
            continue
        numbers.append(line_no)
        batch.rows.append(picked)
    batch.numbers = numbers
    return batch


def _line_breaks(value: str) -> int:
    if "\n" not in value and "\r" not in value:
        return 0
    return value.count("\n") + value.count("\r") - value.count("\r\n")


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _columns(reader: Any, mapping: Mapping[str, str], header: bool) -> dict[str, int]:
    """Column index per mapped field, plus ``__width__`` (the expected row width; 0 when unknown)."""
    if not header:
        result: dict[str, int] = {}
        for field, column in mapping.items():
            if not column.isdigit() or int(column) < 1:
                raise FeedError(f"Without a header row, {field} must map to a column number, not {column!r}")
            result[field] = int(column) - 1
        result["__width__"] = 0
        return result
    names = next(reader, None)
    if names is None:
        raise FeedError("The file has no header row")
    normalised = [name.replace("\ufeff", "").strip().lower() for name in names]
    mapping = {**csv_mapping_from_header(names), **mapping}  # usual column names fill unmapped fields
    result = {}
    for field, column in mapping.items():
        wanted = column.strip().lower()
        if wanted in normalised:
            result[field] = normalised.index(wanted)
        elif wanted.isdigit() and 1 <= int(wanted) <= len(names):
            result[field] = int(wanted) - 1
        else:
            raise FeedError(f"Column {column!r} (for {field}) is not in the header: {', '.join(names)[:200]}")
    result["__width__"] = len(names)
    return result

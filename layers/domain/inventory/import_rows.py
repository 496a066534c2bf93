"""The rows of a stock import file, read as a stream and validated with their line numbers.

A file is JSON Lines or CSV, optionally gzip-compressed (found by its magic bytes). It is read in
bounded blocks and split into physical lines, so memory never grows with the file size, only with
the number of distinct (product_id, stock_location) pairs kept for the duplicate check. Every
problem is a RowError with a stable `code` and the 1-based physical line number. A gzip file that
inflates far beyond what any import file does (a gzip bomb) raises InflationLimit.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from enum import StrEnum
from hashlib import blake2b
from itertools import chain
from json.scanner import make_scanner
from typing import Any, Protocol

from inventory.types import DEFAULT_STOCK_LOCATIONS, MAIN, MAX_ID_LENGTH, MAX_QUANTITY, is_product_id

# Import files compress 6 to 30 times (measured: CSV and JSON Lines of sequential ids); deflate's
# best, on blank lines or one endless line, is about 1,030. Past its first MiB, a gzip file may
# inflate at most 200 times the bytes read of it (read 16 KiB at a time, so that the count keeps up).
MAX_INFLATION = 200
INFLATION_FLOOR_BYTES = 1024 * 1024
_COMPRESSED_READ = 16 * 1024
_BLOCK = 64 * 1024
_QUANTITY_DIGITS = len(str(MAX_QUANTITY))
_BOM = b"\xef\xbb\xbf"
_GZIP_MAGIC = b"\x1f\x8b"
_FIELDS = frozenset({"product_id", "quantity", "stock_location"})
_CSV_HEADERS = (["product_id", "quantity"], ["product_id", "quantity", "stock_location"])
# The C scanner that json.loads runs, minus its wrapper (about 15% of the time per line); json.loads on any doubt.
_json_decoder: Any = json.JSONDecoder()
_scan_json = make_scanner(_json_decoder)


class FileFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class Row:
    """One valid row; `stock_location` holds the default when the file leaves it out."""

    line: int
    product_id: str
    quantity: int
    stock_location: str


@dataclass(frozen=True, slots=True)
class RowError:
    """One problem on one line (line 0: the file as a whole); `field` names the field at fault, if one is."""

    line: int
    code: str
    message: str
    field: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The error as JSON-ready data; `field` is left out when there is none."""
        data: dict[str, object] = {"line": self.line, "code": self.code, "message": self.message}
        if self.field is not None:
            data["field"] = self.field
        return data


class DuplicateCheck:
    """Remembers the first line of each (product_id, stock_location) pair, under a compact key.

    A product id of under 16 UTF-8 bytes is its own key (a bytes object no larger than a digest);
    a longer one is keyed by its 16-byte BLAKE2b digest, so the two kinds of key never collide.
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[str, dict[bytes, int]] = {}

    def first_line(self, product_id: str, stock_location: str, line: int) -> int | None:
        """None the first time this pair is seen (and remembers `line`), else the first line."""
        key = product_id.encode("utf-8", "surrogatepass")
        if len(key) >= 16:
            key = blake2b(key, digest_size=16).digest()
        seen = self._seen.get(stock_location)
        if seen is None:
            seen = self._seen[stock_location] = {}
        first = seen.get(key)
        if first is None:
            seen[key] = line
        return first


class _ByteStream(Protocol):
    def read(self, size: int, /) -> bytes: ...


class InflationLimit(ValueError):
    """A gzip file inflated past MAX_INFLATION times its compressed size: reading stops there."""

    def __init__(self, compressed: int, inflated: int) -> None:
        super().__init__(
            f"the file inflates more than {MAX_INFLATION} times its size ({compressed} bytes read gave "
            f"{inflated}), which no import file does: it is not read further"
        )


def read_rows(
    stream: _ByteStream,
    file_format: FileFormat,
    stock_locations: Collection[str] = DEFAULT_STOCK_LOCATIONS.keys(),
    *,
    max_line_bytes: int = 4096,
) -> Iterator[Row | RowError]:
    """Yields every row or error in file order; detects gzip itself.

    A damaged gzip stream raises (gzip.BadGzipFile, EOFError or zlib.error) where it is met, and
    one that inflates too far raises InflationLimit.
    """
    if max_line_bytes < 1:
        raise ValueError("max_line_bytes must be at least 1")
    lines = _lines(stream, max_line_bytes)
    if file_format == FileFormat.JSONL:
        return _read_jsonl(lines, frozenset(stock_locations))
    if file_format == FileFormat.CSV:
        return _read_csv(lines, frozenset(stock_locations))
    raise ValueError(f"unknown file format: {file_format!r}")


def sniff_format(first_bytes: bytes, key: str | None = None) -> FileFormat:
    """JSONL when the first non-BOM, non-whitespace byte (after gunzip if gzip) is '{', else CSV;
    `key` (an S3 key) may decide by its suffix (.jsonl/.ndjson/.json(.gz) vs .csv(.gz)) when given."""
    if key is not None:
        name = key.lower().removesuffix(".gz")
        if name.endswith((".jsonl", ".ndjson", ".json")):
            return FileFormat.JSONL
        if name.endswith(".csv"):
            return FileFormat.CSV
    data = first_bytes
    if data.startswith(_GZIP_MAGIC):
        try:  # the start of a gzip stream decompresses as far as it goes
            data = zlib.decompressobj(wbits=31).decompress(data, _BLOCK)
        except zlib.error:
            data = b""
    return FileFormat.JSONL if data.removeprefix(_BOM).lstrip().startswith(b"{") else FileFormat.CSV


def validate_item(
    index: int, product_id: object, quantity: object, stock_location: object, stock_locations: Collection[str]
) -> list[RowError]:
    """The same per-field checks, for inline API items (`index` is used as the `line`);
    lets the HTTP layer and the file reader share one set of rules. None means a field is missing."""
    checked = _check(index, product_id, quantity, stock_location, stock_locations)
    return [] if isinstance(checked, Row) else checked


# ---- the rules (their limits and the product id's are `inventory.types`')


def _check(
    line: int, product_id: object, quantity: object, stock_location: object, locations: Collection[str]
) -> Row | list[RowError]:
    """A Row when every field is valid, else one error per bad field; None stands for a missing field."""
    if stock_location is None:
        stock_location = MAIN
    if (
        isinstance(product_id, str)
        and is_product_id(product_id)
        and type(quantity) is int  # not a bool, nor a float however whole
        and 0 <= quantity <= MAX_QUANTITY
        and isinstance(stock_location, str)
        and stock_location in locations
    ):
        return Row(line, product_id, quantity, stock_location)
    errors = []
    if product_id is None:
        errors.append(RowError(line, "missing_product_id", "product_id is required", "product_id"))
    elif not (isinstance(product_id, str) and is_product_id(product_id)):
        message = f"product_id must be text of 1 to {MAX_ID_LENGTH} characters without control characters"
        errors.append(RowError(line, "invalid_product_id", message, "product_id"))
    if quantity is None:
        errors.append(RowError(line, "missing_quantity", "quantity is required", "quantity"))
    elif type(quantity) is not int:
        errors.append(RowError(line, "invalid_quantity", "quantity must be a whole number", "quantity"))
    elif not 0 <= quantity <= MAX_QUANTITY:
        message = f"quantity must be between 0 and {MAX_QUANTITY}"
        errors.append(RowError(line, "quantity_out_of_range", message, "quantity"))
    if not (isinstance(stock_location, str) and stock_location in locations):
        message = f"stock_location must be one of: {', '.join(sorted(locations))}"
        errors.append(RowError(line, "unknown_stock_location", message, "stock_location"))
    return errors


def _unique(row: Row, duplicates: DuplicateCheck) -> Row | RowError:
    first = duplicates.first_line(row.product_id, row.stock_location, row.line)
    if first is None:
        return row
    message = f"product_id {row.product_id!r} at stock_location {row.stock_location!r} already appears on line {first}"
    return RowError(row.line, "duplicate_row", message)


_EMPTY_FILE = RowError(0, "empty_file", "the file has no rows")


# ---- bytes to lines


class _Prefixed:
    """A stream with the bytes already read from it put back in front."""

    def __init__(self, head: bytes, stream: _ByteStream) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int, /) -> bytes:
        if not self._head:
            return self._stream.read(size)
        data, self._head = self._head[:size], self._head[size:]
        return data


def _read_up_to(stream: _ByteStream, size: int) -> bytes:
    data = b""
    while len(data) < size and (more := stream.read(size - len(data))):
        data += more
    return data


class _Counted:
    """A stream that counts the bytes read from it, read at most _COMPRESSED_READ at a time."""

    def __init__(self, stream: _ByteStream) -> None:
        self._stream = stream
        self.count = 0

    def read(self, size: int, /) -> bytes:
        data = self._stream.read(min(size, _COMPRESSED_READ))
        self.count += len(data)
        return data


def _blocks(stream: _ByteStream) -> Iterator[bytes]:
    """The file's bytes in blocks of at most 64 KiB, gunzipped if gzip, without a leading UTF-8 BOM."""
    head = _read_up_to(stream, len(_GZIP_MAGIC))
    if head != _GZIP_MAGIC:
        source: _ByteStream = _Prefixed(head, stream)
        yield _read_up_to(source, len(_BOM)).removeprefix(_BOM)
        while block := source.read(_BLOCK):
            yield block
        return
    compressed = _Counted(_Prefixed(head, stream))
    # GzipFile only seeks when its caller seeks, which reading never does.
    inflating = gzip.GzipFile(fileobj=compressed, mode="rb")  # type: ignore[call-overload]
    first = _read_up_to(inflating, len(_BOM))
    inflated = len(first)
    yield first.removeprefix(_BOM)
    while block := inflating.read(_BLOCK):
        inflated += len(block)
        if inflated > INFLATION_FLOOR_BYTES and inflated > MAX_INFLATION * compressed.count:
            raise InflationLimit(compressed.count, inflated)
        yield block


_Lines = Iterator[tuple[int, str | RowError]]


def _lines(stream: _ByteStream, max_line_bytes: int) -> _Lines:
    """The non-blank physical lines, decoded, with their numbers; a RowError for a line too long or not UTF-8.

    A line longer than max_line_bytes (not counting its CRLF or LF) is never held whole: once the
    unfinished line passes the limit it is dropped, and the blocks are skipped up to its end.
    """
    number = 0
    pending = b""
    skipping = False  # inside a line already known to be too long
    too_long = f"the line is longer than {max_line_bytes} bytes"
    for block in chain(_blocks(stream), (b"\n",)):  # the extra newline ends an unterminated last line
        parts = (pending + block).replace(b"\r\n", b"\n").split(b"\n")
        pending = parts.pop()
        if skipping:
            if not parts:
                pending = b""
                continue
            skipping = False
            number += 1
            yield number, RowError(number, "line_too_long", too_long)
            del parts[0]
        for part in parts:
            number += 1
            if len(part) > max_line_bytes:
                yield number, RowError(number, "line_too_long", too_long)
            elif part and not part.isspace():
                try:
                    text = part.decode()
                except UnicodeDecodeError:
                    yield number, RowError(number, "not_utf8", "the line is not valid UTF-8")
                    continue
                yield number, text
        if len(pending) > max_line_bytes + 1:  # + 1: it may yet end with CRLF
            pending = b""
            skipping = True


# ---- lines to rows


def _read_jsonl(lines: _Lines, locations: frozenset[str]) -> Iterator[Row | RowError]:
    duplicates = DuplicateCheck()
    empty = True
    for number, text in lines:
        empty = False
        if isinstance(text, RowError):
            yield text
            continue
        try:
            item, end = _scan_json(text, 0)
        except (ValueError, StopIteration, RecursionError):
            end = -1
        if end != len(text):  # bad JSON, or whitespace around it
            try:
                item = json.loads(text)
            except (ValueError, RecursionError) as error:
                yield RowError(number, "invalid_json", f"the line is not valid JSON: {_json_reason(error)}")
                continue
        if type(item) is not dict:
            yield RowError(number, "invalid_row", "the line must be a JSON object")
            continue
        if (twice := _key_twice(text)) is not None:
            yield RowError(number, "duplicate_key", f"the key {twice[:40]!r} appears twice in one object")
            continue
        unknown = [name for name in item if name not in _FIELDS] if not item.keys() <= _FIELDS else []
        for name in unknown:
            yield RowError(number, "unknown_field", f"unknown field {name[:40]!r}")
        checked = _check(number, item.get("product_id"), item.get("quantity"), item.get("stock_location"), locations)
        if isinstance(checked, list):
            yield from checked
        elif not unknown:
            yield _unique(checked, duplicates)
    if empty:
        yield _EMPTY_FILE


_KEY_TEXTS = tuple(f'"{name}"' for name in sorted(_FIELDS))


def _key_twice(text: str) -> str | None:
    """A key that an object of the line holds twice (which of the two would count is anybody's
    guess), else None. Parsing every line with a hook that sees the pairs is 75% slower, so that is
    only done for a line that might: one that names a field twice, or writes an escape (a key can
    be spelled with one)."""
    if "\\" not in text and all(text.count(key) < 2 for key in _KEY_TEXTS):
        return None
    twice: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(items)
        if len(found) != len(items) and not twice:
            seen: set[str] = set()
            twice.append(next(key for key, _ in items if key in seen or seen.add(key)))  # type: ignore[func-returns-value]
        return found

    json.loads(text, object_pairs_hook=pairs)
    return twice[0] if twice else None


def _json_reason(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at column {error.colno}"
    return str(error)  # nested too deep, or a number too long for Python


class _OneLine:
    """Feeds the csv reader one line at a time, and nothing more: a row never spans two lines."""

    __slots__ = ("line",)

    def __init__(self) -> None:
        self.line: str | None = None

    def __iter__(self) -> _OneLine:
        return self

    def __next__(self) -> str:
        line, self.line = self.line, None
        if line is None:
            raise StopIteration
        return line


def _csv_quantity(cell: str) -> object:
    """A quantity cell as _check takes it: None if empty, an int if ASCII digits only, else the text (invalid)."""
    if cell.isascii() and cell.isdigit():
        digits = cell.lstrip("0") or "0"
        return int(digits) if len(digits) <= _QUANTITY_DIGITS else MAX_QUANTITY + 1  # more: out of range anyway
    return cell or None


def _read_csv(lines: _Lines, locations: frozenset[str]) -> Iterator[Row | RowError]:
    feeder = _OneLine()
    reader = csv.reader(feeder, strict=True)
    header = next(lines, None)
    if header is None:
        yield _EMPTY_FILE
        return
    number, text = header
    feeder.line = text if isinstance(text, str) else ""  # an unreadable header line is no header
    try:
        cells = next(reader)
    except (csv.Error, StopIteration):
        cells = []
    if number != 1 or cells not in _CSV_HEADERS:
        message = "line 1 must be the header product_id,quantity or product_id,quantity,stock_location"
        yield RowError(1, "invalid_header", message)
        return
    width = len(cells)
    duplicates = DuplicateCheck()
    empty = True
    for number, text in lines:
        empty = False
        if isinstance(text, RowError):
            yield text
            continue
        feeder.line = text
        try:
            cells = next(reader)
        except (csv.Error, StopIteration) as error:
            yield RowError(number, "invalid_row", f"the line is not valid CSV: {error}")
            continue
        if len(cells) != width:
            yield RowError(number, "invalid_row", f"the line has {len(cells)} cells, the header {width}")
            continue
        location = (cells[2] or None) if width == 3 else None
        checked = _check(number, cells[0] or None, _csv_quantity(cells[1]), location, locations)
        if isinstance(checked, list):
            yield from checked
        else:
            yield _unique(checked, duplicates)
    if empty:
        yield _EMPTY_FILE

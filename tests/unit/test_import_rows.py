"""Reading a stock import file: the rows and errors a user sees, with their line numbers."""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.import_rows import (
    INFLATION_FLOOR_BYTES,
    MAX_INFLATION,
    DuplicateCheck,
    FileFormat,
    InflationLimit,
    Row,
    RowError,
    read_rows,
    sniff_format,
    validate_item,
)
from inventory.types import DEFAULT_STOCK_LOCATIONS, MAX_QUANTITY

JSONL, CSV = FileFormat.JSONL, FileFormat.CSV


class Trickle:
    """A stream that hands out at most `step` bytes per read, like a slow network body."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = io.BytesIO(data)
        self._step = step

    def read(self, size: int) -> bytes:
        return self._data.read(min(size, self._step))

    @property
    def consumed(self) -> int:
        return self._data.tell()


def read(data: bytes | str, file_format: FileFormat = JSONL, max_line_bytes: int = 4096) -> list[Row | RowError]:
    raw = data.encode() if isinstance(data, str) else data
    return list(read_rows(io.BytesIO(raw), file_format, max_line_bytes=max_line_bytes))


def rows(items: list[Row | RowError]) -> list[tuple[int, str, int, str]]:
    return [(r.line, r.product_id, r.quantity, r.stock_location) for r in items if isinstance(r, Row)]


def errors(items: list[Row | RowError]) -> list[tuple[int, str]]:
    return [(e.line, e.code) for e in items if isinstance(e, RowError)]


def only_error(data: bytes | str, file_format: FileFormat = JSONL) -> RowError:
    found = [item for item in read(data, file_format) if isinstance(item, RowError)]
    assert len(found) == 1, found
    return found[0]


# ---- JSON Lines


def test_jsonl_rows_come_back_with_their_line_numbers_and_the_default_location() -> None:
    data = (
        '{"product_id": "SKU-1", "quantity": 5}\n{"product_id": "SKU-2", "quantity": 0, "stock_location": "damaged"}\n'
    )

    items = read(data)

    assert items == [Row(1, "SKU-1", 5, "main"), Row(2, "SKU-2", 0, "damaged")]


@pytest.mark.parametrize(
    ("line", "code", "field"),
    [
        ('{"product_id": "A", "quantity": 1', "invalid_json", None),
        ('{"product_id": "A", "quantity": 1} {}', "invalid_json", None),
        ("[1, 2]", "invalid_row", None),
        ('"just text"', "invalid_row", None),
        ('{"product_id": "A", "quantity": 1, "colour": "red"}', "unknown_field", None),
        ('{"quantity": 1}', "missing_product_id", "product_id"),
        ('{"product_id": null, "quantity": 1}', "missing_product_id", "product_id"),
        ('{"product_id": 42, "quantity": 1}', "invalid_product_id", "product_id"),
        ('{"product_id": "", "quantity": 1}', "invalid_product_id", "product_id"),
        ('{"product_id": "A\\u0007B", "quantity": 1}', "invalid_product_id", "product_id"),
        ('{"product_id": "A\\u0085", "quantity": 1}', "invalid_product_id", "product_id"),
        ('{"product_id": "A\\ud800", "quantity": 1}', "invalid_product_id", "product_id"),
        ('{"product_id": "' + "x" * 129 + '", "quantity": 1}', "invalid_product_id", "product_id"),
        ('{"product_id": "A"}', "missing_quantity", "quantity"),
        ('{"product_id": "A", "quantity": 5.0}', "invalid_quantity", "quantity"),
        ('{"product_id": "A", "quantity": 5.5}', "invalid_quantity", "quantity"),
        ('{"product_id": "A", "quantity": true}', "invalid_quantity", "quantity"),
        ('{"product_id": "A", "quantity": "5"}', "invalid_quantity", "quantity"),
        ('{"product_id": "A", "quantity": -1}', "quantity_out_of_range", "quantity"),
        ('{"product_id": "A", "quantity": 1000000001}', "quantity_out_of_range", "quantity"),
        ('{"product_id": "A", "quantity": 1, "stock_location": "attic"}', "unknown_stock_location", "stock_location"),
        ('{"product_id": "A", "quantity": 1, "stock_location": ["main"]}', "unknown_stock_location", "stock_location"),
    ],
)
def test_a_bad_jsonl_line_is_one_error_on_its_line_and_the_next_line_is_still_read(
    line: str, code: str, field: str | None
) -> None:
    data = '{"product_id": "OK-1", "quantity": 1}\n' + line + '\n{"product_id": "OK-2", "quantity": 2}\n'

    items = read(data)

    assert errors(items) == [(2, code)]
    assert next(e for e in items if isinstance(e, RowError)).field == field
    assert rows(items) == [(1, "OK-1", 1, "main"), (3, "OK-2", 2, "main")]


def test_json_too_deep_or_too_long_for_python_is_invalid_json_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    huge_number = '{"product_id": "A", "quantity": ' + "9" * 5000 + "}"

    items = read(f"{deep}\n{huge_number}\n", max_line_bytes=200_000)

    assert errors(items) == [(1, "invalid_json"), (2, "invalid_json")]


def test_jsonl_accepts_the_edges_of_every_field() -> None:
    longest = "é" * 127 + "😀"  # 128 code points, 258 UTF-8 bytes
    data = (
        json.dumps({"product_id": longest, "quantity": MAX_QUANTITY, "stock_location": None}, ensure_ascii=False)
        + "\n"
        + json.dumps({"product_id": ' a, "b" \u00a0\u200d ', "quantity": 0, "stock_location": "returns"})
        + "\n"
    )

    assert rows(read(data)) == [(1, longest, MAX_QUANTITY, "main"), (2, ' a, "b" \u00a0\u200d ', 0, "returns")]


def test_every_problem_of_a_jsonl_line_is_reported_on_that_line() -> None:
    data = '{"product_id": 7, "quantity": -3, "stock_location": "attic", "size": "L"}\n'

    assert errors(read(data)) == [
        (1, "unknown_field"),
        (1, "invalid_product_id"),
        (1, "quantity_out_of_range"),
        (1, "unknown_stock_location"),
    ]


def test_an_error_serialises_without_an_absent_field() -> None:
    error = only_error('{"product_id": "A", "quantity": 1, "size": "L"}')
    field_error = only_error('{"product_id": "A", "quantity": -1}')

    assert error.as_dict() == {"line": 1, "code": "unknown_field", "message": "unknown field 'size'"}
    assert field_error.as_dict()["field"] == "quantity"
    assert field_error.as_dict()["line"] == 1


# ---- CSV


def test_csv_rows_come_back_with_physical_line_numbers_the_header_being_line_1() -> None:
    data = "product_id,quantity,stock_location\nSKU-1,5,display\nSKU-2,0,\n"

    assert read(data, CSV) == [Row(2, "SKU-1", 5, "display"), Row(3, "SKU-2", 0, "main")]


def test_csv_without_the_location_column_puts_everything_in_main() -> None:
    assert rows(read("product_id,quantity\nSKU-1,7\n", CSV)) == [(2, "SKU-1", 7, "main")]


def test_a_quoted_csv_product_id_may_hold_commas_and_quotes() -> None:
    data = 'product_id,quantity\n"SKU, large ""XL""",3\n'

    assert rows(read(data, CSV)) == [(2, 'SKU, large "XL"', 3, "main")]


@pytest.mark.parametrize(
    "header",
    [
        "",
        "\nproduct_id,quantity",
        "sku,quantity",
        "quantity,product_id",
        "product_id, quantity",
        '"product_id,quantity"',
        "product_id,quantity,stock_location,x",
        "SKU-0,1",
    ],
)
def test_a_csv_without_the_exact_header_is_one_error_on_line_1_and_nothing_more(header: str) -> None:
    data = header + "\nSKU-1,5\n"

    assert errors(read(data, CSV)) == [(1, "invalid_header")]
    assert rows(read(data, CSV)) == []


def test_a_header_with_broken_quoting_is_an_invalid_header() -> None:
    assert errors(read('"product_id,quantity\nA,1\n', CSV)) == [(1, "invalid_header")]


@pytest.mark.parametrize(
    ("line", "code", "field"),
    [
        ("SKU-9,5,main", "invalid_row", None),
        ("SKU-9", "invalid_row", None),
        ('"SKU-9,5', "invalid_row", None),
        ('"SKU"-9,5', "invalid_row", None),
        (",5", "missing_product_id", "product_id"),
        ('"SKU\x01",5', "invalid_product_id", "product_id"),
        ("x" * 129 + ",5", "invalid_product_id", "product_id"),
        ("SKU-9,", "missing_quantity", "quantity"),
        ("SKU-9,+5", "invalid_quantity", "quantity"),
        ("SKU-9,-5", "invalid_quantity", "quantity"),
        ("SKU-9,5.0", "invalid_quantity", "quantity"),
        ("SKU-9,1e3", "invalid_quantity", "quantity"),
        ("SKU-9, 5", "invalid_quantity", "quantity"),
        ("SKU-9,\uff15", "invalid_quantity", "quantity"),
        ("SKU-9,1000000001", "quantity_out_of_range", "quantity"),
        ("SKU-9," + "9" * 5000, "quantity_out_of_range", "quantity"),
    ],
)
def test_a_bad_csv_line_is_one_error_on_its_line_and_the_next_line_is_still_read(
    line: str, code: str, field: str | None
) -> None:
    data = f"product_id,quantity\nOK-1,1\n{line}\nOK-2,2\n"

    items = read(data, CSV, max_line_bytes=8192)

    assert errors(items) == [(3, code)]
    assert next(e for e in items if isinstance(e, RowError)).field == field
    assert rows(items) == [(2, "OK-1", 1, "main"), (4, "OK-2", 2, "main")]


def test_csv_quantities_with_leading_zeros_are_plain_numbers() -> None:
    data = "product_id,quantity\nA,0007\nB," + "0" * 30 + "1000000000\n"

    assert rows(read(data, CSV)) == [(2, "A", 7, "main"), (3, "B", MAX_QUANTITY, "main")]


def test_an_unknown_csv_stock_location_is_an_error_on_its_line() -> None:
    error = only_error("product_id,quantity,stock_location\nA,1,attic\n", CSV)

    assert (error.line, error.code, error.field) == (2, "unknown_stock_location", "stock_location")


# ---- both formats: encodings, line endings, compression, blank lines


def test_a_bom_and_crlf_line_endings_are_accepted() -> None:
    jsonl = b'\xef\xbb\xbf{"product_id": "A", "quantity": 1}\r\n{"product_id": "B", "quantity": 2}\r\n'
    csv_data = b"\xef\xbb\xbfproduct_id,quantity\r\nA,1\r\nB,2\r\n"

    assert rows(read(jsonl)) == [(1, "A", 1, "main"), (2, "B", 2, "main")]
    assert rows(read(csv_data, CSV)) == [(2, "A", 1, "main"), (3, "B", 2, "main")]


@pytest.mark.parametrize(
    ("data", "file_format", "first_row_line"),
    [
        (b'{"product_id": "A", "quantity": 1}\n{"product_id": "B", "quantity": 2}', JSONL, 1),
        (b"product_id,quantity\nA,1\nB,2", CSV, 2),
    ],
)
def test_gzip_is_found_by_its_magic_bytes_and_read_like_the_plain_file(
    data: bytes, file_format: FileFormat, first_row_line: int
) -> None:
    compressed = gzip.compress(b"\xef\xbb\xbf" + data)
    in_two_members = gzip.compress(data[:10]) + gzip.compress(data[10:])

    expected = [(first_row_line, "A", 1, "main"), (first_row_line + 1, "B", 2, "main")]
    assert rows(read(compressed, file_format)) == expected
    assert rows(read(in_two_members, file_format)) == expected
    assert errors(read(compressed, file_format)) == []


def test_a_truncated_gzip_file_raises_instead_of_passing_for_a_short_file() -> None:
    compressed = gzip.compress(b'{"product_id": "A", "quantity": 1}\n' * 1000)

    with pytest.raises(EOFError):
        read(compressed[: len(compressed) // 2])


def test_blank_lines_are_skipped_but_counted() -> None:
    jsonl = '\n  \n{"product_id": "A", "quantity": 1}\n\t\r\n\n{"product_id": "B", "quantity": 2}\n\n'
    csv_data = "product_id,quantity\n \n\nA,1\n\r\n"

    assert read(jsonl) == [Row(3, "A", 1, "main"), Row(6, "B", 2, "main")]
    assert read(csv_data, CSV) == [Row(4, "A", 1, "main")]


def test_a_line_that_is_not_utf8_is_an_error_and_reading_goes_on() -> None:
    jsonl = b'{"product_id": "A\xff", "quantity": 1}\n{"product_id": "B", "quantity": 2}\n'
    csv_data = b"product_id,quantity\nA\xc3,1\nB,2\n"

    assert errors(read(jsonl)) == [(1, "not_utf8")]
    assert rows(read(jsonl)) == [(2, "B", 2, "main")]
    assert errors(read(csv_data, CSV)) == [(2, "not_utf8")]
    assert rows(read(csv_data, CSV)) == [(3, "B", 2, "main")]


def test_a_line_of_exactly_max_line_bytes_is_read_and_one_byte_more_is_too_long() -> None:
    fits = '{"product_id": "' + "x" * 64 + '", "quantity": 1}'
    limit = len(fits)
    data = f'{fits}\r\n{fits.replace("x", "y", 1)}x\n{{"product_id": "B", "quantity": 2}}'

    items = read(data, max_line_bytes=limit)

    assert rows(items) == [(1, "x" * 64, 1, "main"), (3, "B", 2, "main")]
    assert errors(items) == [(2, "line_too_long")]


@pytest.mark.parametrize("file_format", [JSONL, CSV])
def test_a_1mb_line_in_the_middle_is_one_error_and_is_never_held_whole(file_format: FileFormat) -> None:
    # Given a file with a 1 MB line between two good ones
    if file_format is JSONL:
        good = [b'{"product_id": "A", "quantity": 1}', b'{"product_id": "B", "quantity": 2}']
    else:
        good = [b"product_id,quantity\nA,1", b"B,2"]
    data = good[0] + b"\n" + b'{"product_id": "' + b"x" * 1_000_000 + b'"}\r\n' + good[1] + b"\n"
    first = 1 if file_format is JSONL else 2
    stream = Trickle(data, step=50_000)

    # When it is read while memory is traced (the file itself was allocated before)
    tracemalloc.start()
    try:
        items = list(read_rows(stream, file_format))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    # Then the long line is one error, the next line is read, and no copy of the long line was made
    assert errors(items) == [(first + 1, "line_too_long")]
    assert rows(items) == [(first, "A", 1, "main"), (first + 2, "B", 2, "main")]
    assert peak < 500_000


@pytest.mark.parametrize(
    ("data", "file_format"),
    [
        (b"", JSONL),
        (b"\xef\xbb\xbf \n\r\n", JSONL),
        (b"", CSV),
        (b"\n\n", CSV),
        (b"product_id,quantity\n", CSV),
        (b"product_id,quantity,stock_location\r\n\r\n", CSV),
        (gzip.compress(b"", mtime=0), JSONL),
    ],
)
def test_a_file_without_rows_is_one_empty_file_error(data: bytes, file_format: FileFormat) -> None:
    assert read(data, file_format) == [RowError(0, "empty_file", "the file has no rows")]


def test_a_file_whose_only_line_is_bad_is_not_empty_but_has_that_error() -> None:
    assert errors(read("product_id,quantity\nA,x\n", CSV)) == [(2, "invalid_quantity")]


# ---- duplicates


LONG_ID = "PRODUCT-WITH-A-LONG-ID-" + "7" * 40  # long enough to be kept as a digest


def test_a_jsonl_pair_seen_again_far_down_the_file_is_an_error_naming_the_first_line() -> None:
    # Given 5000 rows, the long id on line 10, again on line 5001 (main) and on line 5002 (display)
    lines = [json.dumps({"product_id": f"P{i}", "quantity": i}) for i in range(1, 5001)]
    lines[9] = json.dumps({"product_id": LONG_ID, "quantity": 1})
    lines.append(json.dumps({"product_id": LONG_ID, "quantity": 9}))
    lines.append(json.dumps({"product_id": LONG_ID, "quantity": 9, "stock_location": "display"}))

    items = read("\n".join(lines))

    duplicate = only_error("\n".join(lines))
    assert (duplicate.line, duplicate.code) == (5001, "duplicate_row")
    assert duplicate.message.endswith("already appears on line 10")
    assert rows(items)[-1] == (5002, LONG_ID, 9, "display")
    assert len(rows(items)) == 5001


def test_a_csv_pair_seen_again_far_down_the_file_is_an_error_naming_the_first_line() -> None:
    # Given a header and 5000 rows (lines 2 to 5001), the long id on line 11, then repeats at the end
    lines = ["product_id,quantity,stock_location"] + [f"P{i},{i},main" for i in range(1, 5001)]
    lines[10] = f"{LONG_ID},1,main"
    lines += [f"{LONG_ID},9,main", f"{LONG_ID},9,display", "P77,1,"]

    items = read("\n".join(lines), CSV)

    duplicates = [e for e in items if isinstance(e, RowError)]
    assert [(e.line, e.code, e.message.split()[-1]) for e in duplicates] == [
        (5002, "duplicate_row", "11"),
        (5004, "duplicate_row", "78"),
    ]
    assert len(rows(items)) == 5001


def test_the_duplicate_check_works_across_inline_items_too() -> None:
    check = DuplicateCheck()

    assert check.first_line("SKU-1", "main", 0) is None
    assert check.first_line("SKU-1", "display", 1) is None
    assert check.first_line("x" * 100, "main", 2) is None
    assert check.first_line("SKU-1", "main", 3) == 0
    assert check.first_line("x" * 100, "main", 4) == 2
    assert check.first_line("x" * 99, "main", 5) is None


# ---- inline items share the rules


def test_an_inline_item_is_checked_by_the_same_rules() -> None:
    def codes(product_id: object, quantity: object, location: object = None) -> list[str]:
        return [e.code for e in validate_item(4, product_id, quantity, location, DEFAULT_STOCK_LOCATIONS)]

    assert codes("SKU-1", 5) == []
    assert codes("SKU-1", 5, "returns") == []
    assert codes(None, None) == ["missing_product_id", "missing_quantity"]
    assert codes("SKU\n1", True) == ["invalid_product_id", "invalid_quantity"]
    assert codes("SKU-1", MAX_QUANTITY + 1, "attic") == ["quantity_out_of_range", "unknown_stock_location"]
    assert [e.line for e in validate_item(4, None, 1, None, {"main"})] == [4]


def test_the_caller_decides_which_stock_locations_exist() -> None:
    data = '{"product_id": "A", "quantity": 1, "stock_location": "bin-7"}\n{"product_id": "B", "quantity": 1}\n'

    items = read_rows(io.BytesIO(data.encode()), JSONL, {"bin-7"})

    assert [(i.line, type(i).__name__) for i in items] == [(1, "Row"), (2, "RowError")]


def test_a_caller_mistake_is_refused_when_reading_starts() -> None:
    with pytest.raises(ValueError, match="max_line_bytes"):
        read("", max_line_bytes=0)
    with pytest.raises(ValueError, match="unknown file format"):
        read("", "xml")  # type: ignore[arg-type]


# ---- sniffing the format


@pytest.mark.parametrize(
    ("first_bytes", "key", "expected"),
    [
        (b'{"product_id": "A"', None, JSONL),
        (b'\xef\xbb\xbf \r\n\t{"product_id"', None, JSONL),
        (b"product_id,quantity\n", None, CSV),
        (b"", None, CSV),
        (gzip.compress(b'\n{"product_id": "A", "quantity": 1}\n', mtime=0)[:40], None, JSONL),
        (gzip.compress(b"product_id,quantity\n", mtime=0), None, CSV),
        (b"\x1f\x8bnot really gzip", None, CSV),
        (b"product_id,quantity\n", "imports/s1/stock.JSONL", JSONL),
        (b"product_id,quantity\n", "imports/s1/stock.ndjson.gz", JSONL),
        (b"product_id,quantity\n", "imports/s1/stock.json", JSONL),
        (b'{"product_id": "A"', "imports/s1/stock.csv.gz", CSV),
        (b'{"product_id": "A"', "imports/s1/stock.txt", JSONL),
        (b"product_id,quantity\n", "imports/s1/upload", CSV),
    ],
)
def test_the_format_is_sniffed_from_the_key_suffix_else_the_content(
    first_bytes: bytes, key: str | None, expected: FileFormat
) -> None:
    assert sniff_format(first_bytes, key) is expected


# ---- properties

_LOCATIONS = sorted(DEFAULT_STOCK_LOCATIONS)
product_ids = st.text(
    alphabet=st.one_of(
        st.sampled_from(",\"' ;\\é€😀\u2028\u00a0{}"),
        st.characters(exclude_categories=("Cc", "Cs")),
    ),
    min_size=1,
    max_size=128,
)
valid_rows = st.lists(
    st.tuples(product_ids, st.integers(0, MAX_QUANTITY), st.sampled_from(_LOCATIONS)),
    min_size=1,
    max_size=15,
    unique_by=lambda row: (row[0], row[2]),
)


def write_lines(file_format: FileFormat, items: list[tuple[str, int, str]], ascii_only: bool) -> list[bytes]:
    if file_format is JSONL:
        objects = [{"product_id": p, "quantity": q, "stock_location": s} for p, q, s in items]
        return [json.dumps(o, ensure_ascii=ascii_only).encode() for o in objects]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([["product_id", "quantity", "stock_location"], *items])
    return [line.encode() for line in out.getvalue().split("\n")[:-1]]


def assemble(lines: list[bytes], crlf: bool, compress: bool) -> bytes:
    data = (b"\r\n" if crlf else b"\n").join(lines)
    return gzip.compress(data) if compress else data


@given(
    items=valid_rows,
    file_format=st.sampled_from([JSONL, CSV]),
    blanks=st.lists(st.integers(0, 2), min_size=16, max_size=16),
    crlf=st.booleans(),
    compress=st.booleans(),
    ascii_only=st.booleans(),
    step=st.sampled_from([1, 3, 7, 1 << 20]),
)
def test_any_valid_rows_read_back_exactly(
    items: list[tuple[str, int, str]],
    file_format: FileFormat,
    blanks: list[int],
    crlf: bool,
    compress: bool,
    ascii_only: bool,
    step: int,
) -> None:
    # Given valid rows written in either format, with blank lines between them here and there
    lines: list[bytes] = []
    expected = []
    written = write_lines(file_format, items, ascii_only)
    if file_format is CSV:
        lines.append(written.pop(0))
    for blank_count, line, (product_id, quantity, location) in zip(blanks, written, items, strict=False):
        lines += [b""] * blank_count
        lines.append(line)
        expected.append((len(lines), product_id, quantity, location))

    # When the file is read, a few bytes at a time
    got = list(read_rows(Trickle(assemble(lines, crlf, compress), step), file_format))

    # Then exactly the same rows come back, on the lines they were written on
    assert rows(got) == expected
    assert errors(got) == []


JSONL_BAD_LINES = [
    (b'{"product_id": "BAD", "quantity": 1000000001}', "quantity_out_of_range"),
    (b'{"product_id": "BAD", "quantity": 2.5}', "invalid_quantity"),
    (b'{"product_id": "BAD"}', "missing_quantity"),
    (b'{"quantity": 1}', "missing_product_id"),
    (b'{"product_id": "BAD\\u001b", "quantity": 1}', "invalid_product_id"),
    (b'{"product_id": "BAD", "quantity": 1, "stock_location": "attic"}', "unknown_stock_location"),
    (b'{"product_id": "BAD", "quantity": 1, "colour": "red"}', "unknown_field"),
    (b'{"product_id": "BAD", "quantity": 1, "quantity": 2}', "duplicate_key"),
    (b'{"product_id": "BAD", "quantity": 1, "quantit\\u0079": 2}', "duplicate_key"),
    (b'["BAD", 1]', "invalid_row"),
    (b'{"product_id": "BAD", "quantity": 1', "invalid_json"),
    (b'{"product_id": "BAD\xe9", "quantity": 1}', "not_utf8"),
    (b'{"product_id": "' + b"x" * 5000 + b'", "quantity": 1}', "line_too_long"),
]
CSV_BAD_LINES = [
    (b"BAD,1000000001,main", "quantity_out_of_range"),
    (b"BAD,2.5,main", "invalid_quantity"),
    (b"BAD,,main", "missing_quantity"),
    (b",1,main", "missing_product_id"),
    (b"BAD\x1b,1,main", "invalid_product_id"),
    (b"BAD,1,attic", "unknown_stock_location"),
    (b"BAD,1,main,red", "invalid_row"),
    (b'"BAD,1,main', "invalid_row"),
    (b"BAD\xe9,1,main", "not_utf8"),
    (b"x" * 5000 + b",1,main", "line_too_long"),
]


@given(
    items=valid_rows,
    file_format=st.sampled_from([JSONL, CSV]),
    data=st.data(),
    crlf=st.booleans(),
    compress=st.booleans(),
)
def test_one_bad_line_anywhere_is_exactly_one_error_on_that_line(
    items: list[tuple[str, int, str]], file_format: FileFormat, data: st.DataObject, crlf: bool, compress: bool
) -> None:
    # Given valid rows with one bad line slipped in at a random place
    bad_line, code = data.draw(st.sampled_from(JSONL_BAD_LINES if file_format is JSONL else CSV_BAD_LINES))
    lines = write_lines(file_format, items, ascii_only=False)
    first_row = 1 if file_format is CSV else 0
    position = data.draw(st.integers(first_row, len(lines)))
    lines.insert(position, bad_line)

    # When the file is read
    got = list(read_rows(io.BytesIO(assemble(lines, crlf, compress)), file_format))

    # Then that line, and only it, is an error, and every valid row is still there
    assert errors(got) == [(position + 1, code)]
    assert [r[1:] for r in rows(got)] == items


@given(items=valid_rows, file_format=st.sampled_from([JSONL, CSV]), data=st.data())
def test_repeating_a_row_later_is_one_duplicate_naming_the_first_line(
    items: list[tuple[str, int, str]], file_format: FileFormat, data: st.DataObject
) -> None:
    lines = write_lines(file_format, items, ascii_only=True)
    first_row = 1 if file_format is CSV else 0
    original = data.draw(st.integers(first_row, len(lines) - 1))
    position = data.draw(st.integers(original + 1, len(lines)))
    lines.insert(position, lines[original])

    got = list(read_rows(io.BytesIO(b"\n".join(lines)), file_format))

    found = [e for e in got if isinstance(e, RowError)]
    assert [(e.line, e.code) for e in found] == [(position + 1, "duplicate_row")]
    assert found[0].message.endswith(f"already appears on line {original + 1}")
    assert [r[1:] for r in rows(got)] == items


@functools.cache
def _bomb_member(line: bytes) -> bytes:
    return gzip.compress(line * ((64 << 20) // len(line)), 9)  # 64 MiB inflated, about 64 KiB


def gzip_bomb(line: bytes, gigabytes: int) -> bytes:
    """A small gzip file (concatenated members, as gzip allows) that inflates to `gigabytes` GiB of `line`."""
    return _bomb_member(line) * (gigabytes * 16)


@pytest.mark.parametrize(
    ("line", "file_format"),
    [(b"\n", JSONL), (b"\n", CSV), (b"x", JSONL), (b" ", CSV)],
    ids=["blank lines", "blank lines after no header", "one endless line", "one endless blank line"],
)
def test_a_gzip_bomb_that_yields_no_rows_stops_being_read_at_the_inflation_limit(
    line: bytes, file_format: FileFormat
) -> None:
    # Given 4 GiB of nothing that counts as a row (not even an invalid one), in a gzip file of 4 MiB
    bomb = gzip_bomb(line, 4)
    assert len(bomb) < 5 << 20
    stream = Trickle(bomb, step=1 << 20)

    # When it is read
    with pytest.raises(InflationLimit) as stopped:
        list(read_rows(stream, file_format))

    # Then reading stopped within its first megabytes, past the limit
    assert f"more than {MAX_INFLATION} times its size" in str(stopped.value)
    assert stream.consumed < 1 << 20


def test_a_gzip_bomb_is_read_in_bounded_memory() -> None:
    bomb = gzip_bomb(b"x", 4)

    tracemalloc.start()
    try:
        with pytest.raises(InflationLimit):
            list(read_rows(io.BytesIO(bomb), JSONL))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 2 << 20


def test_a_file_that_compresses_as_well_as_import_files_do_is_read_whole() -> None:
    # Given 2 MB of JSON Lines with sequential ids, which compress about 26 times
    data = b"".join(b'{"product_id": "SKU-%07d", "quantity": 0, "stock_location": "main"}\n' % n for n in range(30_000))
    compressed = gzip.compress(data)
    assert len(data) > INFLATION_FLOOR_BYTES
    assert len(data) > 20 * len(compressed)

    # Then every row is read
    assert sum(1 for item in read_rows(io.BytesIO(compressed), JSONL) if isinstance(item, Row)) == 30_000


def test_a_field_named_twice_in_a_line_is_an_error_but_its_name_as_a_value_is_not() -> None:
    """Which of two values of one key counts is anybody's guess (the HTTP API refuses it too)."""
    items = read(
        '{"product_id": "quantity", "quantity": 1}\n'
        '{"product_id": "\\"quantity\\"", "quantity": 2}\n'
        '{"product_id": "p", "quantity": 3, "quantity": 4}\n'
        '{"product_id": "q", "stock_location": "main", "stock_location": "damaged", "quantity": 5}\n'
    )

    assert rows(items) == [(1, "quantity", 1, "main"), (2, '"quantity"', 2, "main")]
    assert errors(items) == [(3, "duplicate_key"), (4, "duplicate_key")]

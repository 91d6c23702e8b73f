"""Real-name registration (实名登记) as the community office does it: each field checked before anything is
stored, and the registration office's sheet (CSV or XLSX) read row by row.

Errors are :class:`FieldError` with a stable ``code`` (the console translates it into both languages) and an
English message that says what to fix; :class:`Invalid` carries them all, with the sheet's row numbers on
an import, so one answer lists every bad row and nothing of a bad file is stored.

The resident ID number is the 18-character one of GB 11643-1999: 17 digits (area, birth date, sequence)
and an ISO 7064 MOD 11-2 check character (0-9 or X).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hub.errors import HubError

ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
_ID_RE = re.compile(r"^\d{17}[\dX]$")
_PHONE_RE = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")  # a mainland mobile, or a landline with its area code
MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 5000

# the sheet's column headings, as the registration office writes them or in English
HEADINGS = {
    "name": ("name", "姓名", "真实姓名"),
    "id_number": ("id_number", "id number", "身份证号", "身份证号码", "公民身份号码"),
    "phone": ("phone", "手机", "手机号", "电话", "联系电话"),
    "block": ("block", "楼栋", "楼栋编号"),
    "unit": ("unit", "房号", "房间", "单元"),
    "lease_start": ("lease_start", "lease start", "租期开始", "起租日期", "租赁开始"),
    "lease_end": ("lease_end", "lease end", "租期结束", "到期日期", "租赁结束"),
}
REQUIRED = ("name", "id_number", "phone", "block", "lease_start", "lease_end")


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str
    row: int | None = None  # the sheet's row number (1 = the headings) on an import

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.row is not None:
            out["row"] = self.row
        return out


@dataclass
class Invalid(HubError):
    """Nothing was stored: every error found, for the form or for each row of the sheet."""

    errors: list[FieldError] = field(default_factory=list)
    message: str = "the registration has errors; nothing was stored"

    def __str__(self) -> str:
        return f"{self.message}: " + "; ".join(
            (f"row {e.row}: " if e.row is not None else "") + f"{e.field}: {e.message}" for e in self.errors[:20])

    def as_detail(self) -> dict[str, Any]:
        return {"message": self.message, "errors": [e.as_dict() for e in self.errors]}


def check_resident_id(value: str) -> str:
    """The ID number normalised (upper-case X), or a FieldError saying what is wrong with it."""
    text = value.strip().upper().replace(" ", "")
    if not _ID_RE.match(text):
        raise _FieldFail("id_number", "id_format", "a resident ID number has 18 characters: 17 digits and a "
                         "last digit or X")
    try:
        born = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
    except ValueError:
        raise _FieldFail("id_number", "id_birth", f"characters 7-14 ({text[6:14]}) are not a birth date") from None
    if born.year < 1900 or born > date.today():
        raise _FieldFail("id_number", "id_birth", f"characters 7-14 ({text[6:14]}) are not a possible birth date")
    expected = ID_CHECK[sum(int(c) * w for c, w in zip(text[:17], ID_WEIGHTS, strict=True)) % 11]
    if text[17] != expected:
        raise _FieldFail("id_number", "id_check_digit", f"the check digit is {text[17]}, the first 17 give "
                         f"{expected} (GB 11643): a digit was mistyped")
    return text


class _FieldFail(Exception):
    def __init__(self, field_: str, code: str, message: str) -> None:
        super().__init__(message)
        self.error = FieldError(field_, code, message)


@dataclass
class TenantFields:
    name: str
    id_number: str | None
    phone: str
    block: str
    unit: str
    lease_start: datetime
    lease_end: datetime


def check_fields(raw: dict[str, Any], tz: ZoneInfo, *, row: int | None = None,
                 require_id: bool = True) -> tuple[TenantFields | None, list[FieldError]]:
    """Every field of one registration checked alone (the store's checks, unit and duplicates, come after)."""
    errors: list[FieldError] = []

    def fail(field_: str, code: str, message: str) -> None:
        errors.append(FieldError(field_, code, message, row))

    name = str(raw.get("name") or "").strip()
    if not name:
        fail("name", "required", "the real name is required")
    elif len(name) > 100:
        fail("name", "too_long", "the name is longer than 100 characters")
    id_number: str | None = None
    id_raw = str(raw.get("id_number") or "").strip()
    if id_raw:
        try:
            id_number = check_resident_id(id_raw)
        except _FieldFail as exc:
            errors.append(FieldError(**{**exc.error.__dict__, "row": row}))
    elif require_id:
        fail("id_number", "required", "the resident ID number is required")
    phone = re.sub(r"[\s()]", "", str(raw.get("phone") or ""))
    if not phone:
        fail("phone", "required", "the phone number is required")
    elif not _PHONE_RE.match(phone.removeprefix("+86")):
        fail("phone", "phone_format", "a phone number is an 11-digit mobile (1xxxxxxxxxx) or a landline with its "
             "area code (0xxx-xxxxxxx)")
    block = str(raw.get("block") or "").strip()
    if not block:
        fail("block", "required", "the block is required")
    unit = str(raw.get("unit") or "").strip()
    start = _when(raw.get("lease_start"), tz, end=False, field_="lease_start", errors=errors, row=row)
    end = _when(raw.get("lease_end"), tz, end=True, field_="lease_end", errors=errors, row=row)
    if start is not None and end is not None and end <= start:
        fail("lease_end", "lease_order", "the lease ends before it starts")
    if errors or start is None or end is None:
        return None, errors
    return TenantFields(name, id_number, phone.removeprefix("+86"), block, unit, start, end), []


def _when(value: Any, tz: ZoneInfo, *, end: bool, field_: str, errors: list[FieldError],
          row: int | None) -> datetime | None:
    """A lease date: a date alone is the start of that day (lease start) or its last second (lease end), in
    the district's zone; a time with a zone is kept; a spreadsheet's date cell is a date."""
    if value is None or value == "":
        errors.append(FieldError(field_, "required", f"{field_.replace('_', ' ')} is required", row))
        return None
    if isinstance(value, datetime) and value.tzinfo is None and value.time() == time(0):
        value = value.date()  # a spreadsheet's date cell
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, date):
        day = value
    else:
        text = str(value).strip()
        try:
            if "T" in text or ":" in text:  # a time must say its zone (an API caller's, not a person's)
                dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
                if dt.tzinfo is None:
                    errors.append(FieldError(field_, "zone_missing", f"{value!r} has a time but no zone: add "
                                             "one (+08:00) or give a date alone", row))
                    return None
                return dt
            parts = text.replace("/", "-").replace(".", "-").split("-")
            day = date.fromisoformat("-".join(p.zfill(2) for p in parts))
        except ValueError:
            errors.append(FieldError(field_, "date_format", f"{value!r} is not a date: write year-month-day "
                                     "(2026-12-31)", row))
            return None
    if end:
        return datetime.combine(day, time(0), tz) + timedelta(days=1, seconds=-1)
    return datetime.combine(day, time(0), tz)


# --- the registration office's sheet -----------------------------------------------------------------
def read_sheet(data: bytes, filename: str) -> list[tuple[int, dict[str, Any]]]:
    """The sheet's rows as (row number, fields), from CSV (UTF-8 or GB18030) or XLSX; an Invalid when the
    file cannot be read or its headings are not the registration office's."""
    if len(data) > MAX_IMPORT_BYTES:
        raise Invalid([FieldError("file", "file_too_big", f"the file is over {MAX_IMPORT_BYTES // 1048576} MB")],
                      "the file was not read")
    name = filename.lower()
    if name.endswith((".xlsx", ".xlsm")):
        table = _xlsx_rows(data)
    elif name.endswith((".csv", ".txt")):
        table = _csv_rows(data)
    else:
        raise Invalid([FieldError("file", "file_type", "send the sheet as .csv or .xlsx")], "the file was not read")
    rows = [(n, r) for n, r in enumerate(table, 1) if any(str(c).strip() for c in r if c is not None)]
    if not rows:
        raise Invalid([FieldError("file", "file_empty", "the file has no rows")], "the file was not read")
    heading_row, headings = rows[0]
    columns: dict[str, int] = {}
    for i, cell in enumerate(headings):
        key = str(cell or "").strip().lower()
        for fname, names in HEADINGS.items():
            if key in names:
                columns[fname] = i
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        raise Invalid([FieldError("file", "headings", "the first row must name the columns; missing: "
                                  + ", ".join(f"{f} ({HEADINGS[f][1]})" for f in missing), heading_row)],
                      "the file was not read")
    if len(rows) - 1 > MAX_IMPORT_ROWS:
        raise Invalid([FieldError("file", "too_many_rows", f"more than {MAX_IMPORT_ROWS} rows: split the sheet")],
                      "the file was not read")
    return [(n, {f: _cell(r[i] if i < len(r) else None) for f, i in columns.items()}) for n, r in rows[1:]]


def _cell(value: Any) -> Any:
    """A spreadsheet's number as the digits typed (a phone 13800000000 read as 13800000000.0)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _csv_rows(data: bytes) -> list[list[Any]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise Invalid([FieldError("file", "file_encoding", "the CSV is neither UTF-8 nor GB18030 text")],
                      "the file was not read")
    if "\x00" in text:
        raise Invalid([FieldError("file", "file_not_csv", "this is not a CSV text file")], "the file was not read")
    return [list(r) for r in csv.reader(io.StringIO(text))]


def _xlsx_rows(data: bytes) -> list[list[Any]]:
    from openpyxl import load_workbook  # the hub's import only (not on nodes)

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise Invalid([FieldError("file", "file_not_xlsx", "this file is not an XLSX workbook (an .xlsx is a zip "
                                  "archive; an old .xls or a renamed file is not): save it as .xlsx or .csv")],
                      "the file was not read")
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a damaged workbook
        raise Invalid([FieldError("file", "file_not_xlsx", f"the XLSX cannot be read ({type(exc).__name__}): save "
                                  "it again as .xlsx or .csv")], "the file was not read") from None
    try:
        ws = wb.worksheets[0] if wb.worksheets else None
        if ws is None:
            return []
        return [list(r) for r in ws.iter_rows(values_only=True)]
    finally:
        wb.close()

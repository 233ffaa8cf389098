"""The input schema: canonical column names, the headers hotline exports actually use, and the
per-row validation that turns raw cells into a clean ticket or a quarantine reason."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from triage.ingest.readers import BadCell, bounded
from triage.text import caller_hash, clean_text, mask_phone, mask_pii, normalize

REQUIRED = ("ticket_id", "received_at", "text")
OPTIONAL = (
    "title", "address", "district", "street", "community", "channel", "caller_phone",
    "lat", "lon", "category", "votes",
)  # fmt: skip

# Header spellings seen in exports (after NFKC, lower-casing and removing spaces/underscores).
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "ticket_id": ("ticketid", "id", "工单编号", "工单号", "工单id", "编号", "受理编号", "留言编号", "诉求编号", "servicerequestid"),
    "received_at": ("receivedat", "受理时间", "来电时间", "留言时间", "登记时间", "创建时间", "派单时间", "时间", "requesteddatetime"),
    "text": ("text", "诉求内容", "来电内容", "留言详情", "反映内容", "问题描述", "内容", "详情", "description"),
    "title": ("title", "标题", "诉求标题", "留言主题", "主题", "工单标题"),
    "address": ("address", "诉求地址", "事发地址", "地址", "发生地点", "问题地点", "addressstring"),
    "district": ("district", "区", "所属区", "区县", "所属区县", "行政区"),
    "street": ("street", "街道", "街乡镇", "所属街道", "乡镇", "街道乡镇", "所属街乡镇"),
    "community": ("community", "社区", "村居", "社区村", "所属社区", "社区(村)"),
    "channel": ("channel", "来源渠道", "渠道", "来源", "受理渠道"),
    "caller_phone": ("callerphone", "phone", "来电号码", "联系电话", "电话", "手机号", "联系方式"),
    "lat": ("lat", "latitude", "纬度"),
    "lon": ("lon", "lng", "long", "longitude", "经度"),
    "category": ("category", "类别", "分类", "诉求类别", "问题类别", "servicecode"),
    "votes": ("votes", "点赞数", "点赞", "likes"),
}  # fmt: skip

MAX_ID_CHARS = 64
_ID_OK = re.compile(r"^[0-9A-Za-z_\-.:/#]+$")
_CN_DATE = re.compile(
    r"(\d{4})\s*[年/.-]\s*(\d{1,2})\s*[月/.-]\s*(\d{1,2})\s*日?\s*"
    r"(?:(\d{1,2})\s*[:时点]\s*(\d{1,2})\s*分?\s*(?::?\s*(\d{1,2})\s*秒?)?)?$"
)
_BJ_LAT, _BJ_LON = (39.3, 41.2), (115.3, 117.6)
SHARDS = 1024  # tickets carry a stable bucket 0..1023; a run with N workers takes bucket % N


def header_key(h: str) -> str:
    return re.sub(r"[\s_]+", "", unicodedata.normalize("NFKC", str(h or "")).strip().lower())


_LOOKUP = {
    alias: canon for canon, aliases in HEADER_ALIASES.items() for alias in (*aliases, canon.replace("_", ""))
}


class FileSchemaError(ValueError):
    """The file's columns cannot be mapped (a required column is missing or ambiguous)."""


def map_columns(header: Sequence[str], source: str) -> tuple[dict[str, int], list[str]]:
    """Canonical column → index in the file. Raises FileSchemaError naming the problem."""
    mapping: dict[str, int] = {}
    ignored: list[str] = []
    for i, h in enumerate(header):
        canon = _LOOKUP.get(header_key(h))
        if canon is None:
            ignored.append(str(h))
            continue
        if canon in mapping:
            raise FileSchemaError(
                f"{source}: columns {header[mapping[canon]]!r} and {h!r} both mean '{canon}'; keep one"
            )
        mapping[canon] = i
    missing = [c for c in REQUIRED if c not in mapping]
    if missing:
        raise FileSchemaError(
            f"{source}: required column(s) missing: {', '.join(missing)}. "
            f"The file has: {', '.join(map(str, header)) or '(no columns)'}. "
            f"Accepted names for them: "
            + "; ".join(f"{m}: {', '.join(HEADER_ALIASES[m][:6])}" for m in missing)
        )
    return mapping, ignored


@dataclass
class Rejection:
    code: str
    field: str | None
    message: str


@dataclass
class CleanRow:
    values: dict[str, Any]
    warnings: list[str]


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return str(v)


def parse_timestamp(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """Parse a received time. Rule: a timestamp without offset is Beijing time (Asia/Shanghai);
    one with an offset or Z is converted. Returns None when the value cannot be read, or cannot be
    converted (0001-01-01 in Beijing time is before the first UTC datetime Python has)."""
    try:
        return _parse_timestamp(value, tz)
    except (OverflowError, OSError, ValueError):
        return None


def _parse_timestamp(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        ts = value
    else:
        s = normalize(_text(value))
        if not s:
            return None
        if s.isdigit() and len(s) in (10, 13):  # Unix epoch seconds / milliseconds (UTC)
            secs = int(s) / (1000 if len(s) == 13 else 1)
            return dt.datetime.fromtimestamp(secs, dt.UTC)
        try:
            ts = dt.datetime.fromisoformat(s.replace("/", "-"))
        except ValueError:
            m = _CN_DATE.match(s)
            if not m:
                return None
            y, mo, d, h, mi, se = (int(x) if x else 0 for x in m.groups())
            try:
                ts = dt.datetime(y, mo, d, h, mi, se)
            except ValueError:
                return None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz)
    return ts.astimezone(dt.UTC)


# Districts, streets, communities, channels and source categories repeat across a night: each
# distinct value is cleaned once (normalising every cell was a third of ingest time).
_clean_repeated = lru_cache(maxsize=1 << 16)(clean_text)
_REPEATED = frozenset({"district", "street", "community", "channel", "category"})


# Columns read as text: a JSON object, list or boolean there is a wrong column type, not a value
# (its repr would be stored as the complaint). Numbers are fine (ids and phone numbers often are).
_TEXT_COLUMNS = frozenset(REQUIRED) | frozenset(OPTIONAL) - {"lat", "lon", "votes"}
_NOT_TEXT = (dict, list, tuple, bool, BadCell)
MAX_VOTES = 2**31 - 1  # the column is a 32-bit integer on PostgreSQL
_EXCEL_NUMBER = re.compile(r"^[+-]?\d+(?:\.\d*)?[eE][+-]?\d+$")  # 1.38123E+10


def _wrong_type(col: str, v: Any) -> Rejection:
    if isinstance(v, BadCell):
        return Rejection("bad_value", col, f"{col} is {v.problem}")
    kind = "a JSON object" if isinstance(v, dict) else "true/false" if isinstance(v, bool) else "a list"
    return Rejection("bad_value", col, f"{col} is {kind}, not text")


def _shown(v: Any, limit: int) -> str:
    """A raw value quoted in a message: cut, normalised and PII-masked (reasons are read by staff)."""
    return repr(mask_pii(normalize(_text(v)[: limit * 2]))[:limit])


def _float(v: Any) -> float | None:
    s = normalize(_text(v))
    if not s:
        return None
    return float(s)


def validate_row(
    cells: Sequence[Any],
    mapping: dict[str, int],
    *,
    tz: ZoneInfo,
    now: dt.datetime,
    max_text_chars: int,
    salt: str,
) -> CleanRow | Rejection:
    """One raw row → cleaned ticket values, or the reason it cannot be used."""

    def get(col: str) -> Any:
        i = mapping.get(col)
        return cells[i] if i is not None and i < len(cells) else None

    warnings: list[str] = []
    for col, i in mapping.items():
        if i < len(cells) and isinstance(cells[i], _NOT_TEXT) and col in _TEXT_COLUMNS:
            return _wrong_type(col, cells[i])
    tid = normalize(_text(get("ticket_id")))
    if not tid:
        return Rejection("missing_field", "ticket_id", "ticket_id is empty")
    if len(tid) > MAX_ID_CHARS or not _ID_OK.match(tid):
        return Rejection(
            "bad_ticket_id",
            "ticket_id",
            f"ticket_id {_shown(tid, 80)} must be ≤{MAX_ID_CHARS} letters, digits or -_.:/#",
        )

    raw_ts = get("received_at")
    if raw_ts in (None, ""):
        return Rejection("missing_field", "received_at", "received_at is empty")
    received = parse_timestamp(raw_ts, tz)
    if received is None:
        return Rejection(
            "bad_timestamp",
            "received_at",
            f"received_at {_shown(raw_ts, 60)} is not a date-time in years 2000–9999 "
            "(use e.g. 2026-11-20 09:30:00, Beijing time)",
        )
    if received > now + dt.timedelta(days=1):
        return Rejection(
            "future_timestamp", "received_at", f"received_at {received.isoformat()} is in the future"
        )
    local = received.astimezone(tz)  # the year people wrote, not the UTC one (2000-01-01 05:00 is 2000)
    if local.year < 2000:
        return Rejection("bad_timestamp", "received_at", f"received_at {local.isoformat()} is before 2000")

    raw_text = _text(get("text"))
    if len(raw_text) > max_text_chars * 4:  # do not spend time normalising an absurd blob
        return Rejection(
            "text_too_long", "text", f"text has {len(raw_text):,} characters; the limit is {max_text_chars:,}"
        )
    text = clean_text(raw_text)
    if not text:
        return Rejection("empty_text", "text", "text is empty")
    if len(text) > max_text_chars:
        return Rejection(
            "text_too_long", "text", f"text has {len(text):,} characters; the limit is {max_text_chars:,}"
        )

    values: dict[str, Any] = {
        "ticket_id": tid,
        "received_at": received,
        "received_date": received.astimezone(tz).date(),
        "text": text,
    }
    for col, limit in (("title", 500), ("address", 500), ("district", 64), ("street", 128), ("community", 128),
                       ("channel", 32), ("category", 64)):  # fmt: skip
        raw = _text(get(col))
        v = _clean_repeated(raw) if col in _REPEATED and len(raw) <= limit else clean_text(raw)
        if len(v) > limit:
            warnings.append(f"{col}_truncated")
            v = v[:limit]
        values["source_category" if col == "category" else col] = v or None

    phone = normalize(_text(get("caller_phone")))
    if _EXCEL_NUMBER.match(phone):
        # Excel showed the number in scientific notation (1.38123E+10): its last digits are gone,
        # so it is no caller. The field is dropped (no hash: it would merge strangers into one
        # "repeat caller"), the row is kept, and the night's ledger counts the warning.
        warnings.append("bad_phone")
        phone = ""
    values["caller_hash"] = caller_hash(phone, salt)
    values["caller_masked"] = mask_phone(phone)

    lat = lon = None
    try:
        lat, lon = _float(get("lat")), _float(get("lon"))
    except ValueError:
        warnings.append("bad_coordinate")
        lat = lon = None
    if lat is not None and lon is not None:
        if not (_BJ_LAT[0] <= lat <= _BJ_LAT[1] and _BJ_LON[0] <= lon <= _BJ_LON[1]):
            warnings.append("coordinate_outside_beijing")
            lat = lon = None
    elif (lat is None) != (lon is None):
        warnings.append("coordinate_incomplete")
        lat = lon = None
    values["lat"], values["lon"] = lat, lon

    votes = normalize(_text(get("votes")))
    try:
        values["votes"] = int(float(votes.replace(",", ""))) if votes else None  # "1,234"
    except (ValueError, OverflowError):  # "abc", "nan", "1e400"
        values["votes"] = -1
    if values["votes"] is not None and not 0 <= values["votes"] <= MAX_VOTES:
        warnings.append("bad_votes")
        values["votes"] = None

    values["content_hash"] = content_hash(values)
    values["shard"] = zlib.crc32(tid.encode()) % SHARDS
    return CleanRow(values, warnings)


_HASHED = ("received_at", "title", "text", "address", "district", "street", "community", "channel",
           "caller_hash", "lat", "lon", "source_category")  # fmt: skip


def content_hash(values: dict[str, Any]) -> str:
    parts = []
    for k in _HASHED:
        v = values.get(k)
        if getattr(v, "nanosecond", 0):  # stored with microseconds: hash what is stored
            v = v.replace(nanosecond=0)
        parts.append(v.isoformat() if isinstance(v, dt.datetime) else ("" if v is None else str(v)))
    return hashlib.sha1("\x1f".join(parts).encode()).hexdigest()


def masked_raw(header: Sequence[str], cells: Sequence[Any], limit: int = 2000) -> dict[str, str]:
    """The raw row as kept in quarantine: every value PII-masked and cut to ``limit`` characters."""
    out = {}
    for i, h in enumerate(header):
        v = cells[i] if i < len(cells) else None
        s = f"<{v.problem}>" if isinstance(v, BadCell) else _text(v)
        if _LOOKUP.get(header_key(h)) == "caller_phone" and not isinstance(v, BadCell):
            out[str(h)] = mask_phone(s) or ""  # a bare 62345678 is a number only this column tells
        else:
            out[str(h)] = masked_text(s, limit)
    return out


def masked_text(s: str, limit: int = 2000) -> str:
    """A raw value or line for quarantine: cut to ``limit`` characters (saying how long it was),
    normalised like stored text (full-width digits, invisible characters, whitespace runs) so that
    masking sees the numbers it would see in a ticket, then PII-masked; the script is kept as sent."""
    return mask_pii(normalize(bounded(s, limit), simplify=False)) if s else ""

"""Chinese text handling: normalisation and PII masking (word segmentation lives with the classifier).

Everything that reaches the database goes through :func:`clean_text` first, so that traditional
and simplified script, full-width and half-width characters, and stray whitespace all look the same
to the classifier, the address resolver and the people reading tickets, and so that no caller phone
number or ID number is ever stored in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import unicodedata
from functools import lru_cache

import opencc

# Zero-width and bidi control characters carry no meaning in a complaint and break matching; lone
# surrogates (half an emoji from a broken JSON escape) cannot be encoded, and noncharacters
# (U+FFFE, U+FFFF, U+FDD0–U+FDEF) make XML output unparseable.
_INVISIBLE = re.compile(
    "[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff\x00-\x08\x0b\x0c\x0e-\x1f\x7f"
    "\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]"
)
_WHITESPACE = re.compile(r"\s+")
# Spreadsheet exports write control characters as OOXML escapes: a line break inside an Excel cell
# becomes the literal "_x000D_" in a CSV converted by a tool that does not decode it (29 % of the
# real TipDM messages). Decode the control-character escapes: line breaks and tabs become spaces,
# the rest disappear like the raw control characters do.
_OOXML_CONTROL = re.compile(r"_x00([01][0-9A-Fa-f])_")


def _decode_ooxml_control(m: re.Match[str]) -> str:
    return " " if int(m.group(1), 16) in (0x09, 0x0A, 0x0D) else ""


_converter_lock = threading.Lock()

# Full-width ASCII and the ideographic space are most of what NFKC changes in hotline text; mapping
# them directly (only where they occur) and running the full NFKC only on what is still not
# normalised gives the same result ~5x faster (NFKC(x) == NFKC(x with those characters mapped)).
_FULLWIDTH = re.compile("[\uff01-\uff5e\u3000]")
_FULLWIDTH_MAP = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}


def nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, fast on Chinese text."""
    text = _FULLWIDTH.sub(lambda m: _FULLWIDTH_MAP[m.group()], text)
    return text if unicodedata.is_normalized("NFKC", text) else unicodedata.normalize("NFKC", text)


@lru_cache(maxsize=1)
def _t2s() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def normalize(text: str | None, simplify: bool = True) -> str:
    """Traditional → simplified (unless ``simplify`` is false: quarantine keeps the script as sent),
    full-width → half-width (NFKC), spreadsheet escapes of control characters ("_x000D_") decoded,
    invisible characters removed, whitespace runs collapsed to one space. ``None`` becomes ``""``."""
    if not text:
        return ""
    text = nfkc(text)
    if "_x00" in text:
        text = _OOXML_CONTROL.sub(_decode_ooxml_control, text)
    text = _INVISIBLE.sub("", text)
    text = _WHITESPACE.sub(" ", text).strip()
    if simplify and not text.isascii():
        with _converter_lock:  # the OpenCC handle is not documented as thread-safe
            text = _t2s().convert(text)
    return text


# --- PII -----------------------------------------------------------------------------------------
# Rules (see docs/architecture.md, "Privacy"): run on normalised text, so full-width digits are
# already ASCII. Numbers are found on a "digit view" of the text in which the Chinese numerals people
# use to dictate a number ("一三八…", 幺, 两, 洞, the capital forms) read as digits — one character
# for one, so positions match the text. Digit groups may be split by a space, dash, dot or bracket as
# people write them (138-1234-5678, 138.1234.5678, (010)62345678, 110105 1990 0101 1234). Masks keep
# the conventional visible parts (138****5678) so a clerk can confirm a number with the caller
# without the number being readable; the visible digits are written as ASCII digits.
_CN_DIGITS = str.maketrans("〇零洞幺一二两三四五六七八九壹贰叁肆伍陆柒捌玖", "00011223456789123456789")
_SEP = r"(?:\s?[-./·()\u2010-\u2015\u2212]\s?|\s)?"  # at most one separator between two digits
_NOT_DIGIT = re.compile(r"[^\dXx]")


def _digits(s: str) -> str:
    return _NOT_DIGIT.sub("", s)


# Resident ID numbers: any 18 (or 15) digits, however grouped, that have an ID's structure (region
# code, a valid birth date, sequence, check digit); other long numbers are left alone.
_ID_NUMBER = re.compile(rf"(?<!\d)\d(?:{_SEP}\d){{16}}{_SEP}[\dXx](?![\dXx])")
_ID_NUMBER_15 = re.compile(rf"(?<!\d)\d(?:{_SEP}\d){{14}}(?![\dXx])")  # first generation: 2-digit year
_ID_18 = re.compile(r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]")
_ID_15 = re.compile(r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}")
_COUNTRY = rf"(?:(?:\+|00)\s?86{_SEP}|86(?=1[3-9])|0(?=1[3-9]))"  # +86, 0086, a bare 86 or 0 before a mobile
_MOBILE = re.compile(
    rf"(?<![\d+])(?:{_COUNTRY})?\(?(?P<head>1{_SEP}[3-9]{_SEP}\d)(?:{_SEP}\d){{4}}(?P<tail>(?:{_SEP}\d){{4}})(?!\d)"
)
# Landlines with an area code that exists: 010 and 02x are followed by 8 digits, 0xxx (x ≥ 3) by 7
# or 8 — so account numbers and invoice codes that merely start with 0 are not taken for phones.
_LANDLINE_WITH_AREA = re.compile(  # 010-62345678, (010)62345678, 0731-8888-8888, +86-10-62345678
    rf"(?<![\d+])(?:(?:\+|00)\s?86{_SEP}[(]?0?|[(]?0)"
    rf"(?:(?P<a2>10|2\d)[)]?{_SEP}\d{{4}}|(?P<a3>[3-9]\d{{2}})[)]?{_SEP}\d{{3,4}})"
    rf"{_SEP}(?P<tail>\d{{4}})(?!\d)"
)
# A bare 7–8 digit number (however grouped) is a phone only when a phone word stands just before it.
_LANDLINE_BARE = re.compile(
    r"(?P<word>(?:电话|座机|固话|宅电|联系方式|联系|号码|手机|致电|拨打|来电|回电|tel|Tel|TEL)[^0-9]{0,6})"
    rf"(?P<number>[2-9](?:{_SEP}\d){{6,7}})(?!\d)"
)
# Cheap first test: a run of digits (or Chinese numerals) and separators holding at least seven
# digits — every number masked below has one; ~90 % of tickets have none and skip the rules.
_NUMERAL = "\\d〇零洞幺一二两三四五六七八九壹贰叁肆伍陆柒捌玖"
_NUMBER_RUN = re.compile(f"[{_NUMERAL}][{_NUMERAL}\\s\\-./·()\u2010-\u2015\u2212]{{5,}}[{_NUMERAL}Xx]")
_ONE_NUMERAL = re.compile(f"[{_NUMERAL}]")


def _may_hold_number(text: str) -> bool:
    return any(len(_ONE_NUMERAL.findall(m.group())) >= 7 for m in _NUMBER_RUN.finditer(text))


def _mask_id(m: re.Match[str]) -> str | None:
    d = _digits(m.group(0))
    if not (_ID_18 if len(d) == 18 else _ID_15).fullmatch(d):
        return None  # a long number that is not an ID
    return d[:3] + "*" * (len(d) - 7) + d[-4:]


def _mask_mobile(m: re.Match[str]) -> str:
    return f"{_digits(m['head'])}****{_digits(m['tail'])}"


def _mask_landline(m: re.Match[str]) -> str:
    return f"0{m['a2'] or m['a3']}-****{m['tail']}"


def _mask_bare(m: re.Match[str]) -> str:
    return f"{m['word']}****{_digits(m['number'])[-4:]}"


_RULES = (
    (_ID_NUMBER, _mask_id),
    (_ID_NUMBER_15, _mask_id),
    (_MOBILE, _mask_mobile),
    (_LANDLINE_WITH_AREA, _mask_landline),
    (_LANDLINE_BARE, _mask_bare),
)


def mask_pii(text: str | None) -> str:
    """Mask mobile and landline numbers and resident ID numbers (18 and 15 digits) in normalised
    text, written in digits or Chinese numerals."""
    if not text:
        return text or ""
    if not _may_hold_number(text):
        return text
    for pattern, mask in _RULES:
        view = text.translate(_CN_DIGITS)
        parts, at = [], 0
        for m in pattern.finditer(view):
            masked = mask(m)
            if masked is not None:
                parts += [text[at : m.start()], masked]
                at = m.end()
        if parts:
            text = "".join(parts) + text[at:]
    return text


def mask_text(text: str | None) -> str | None:
    """Mask numbers in text that did not come through ingest — staff's notes and return reasons,
    older rows — on its way in or out. It is normalised for matching as :func:`mask_pii` expects
    (full-width digits, zero-width characters, spacing); text with nothing to mask is returned as
    it was written (less invisible and control characters, which carry no meaning and break pages
    and XML), and ``None`` stays ``None``."""
    if not text:
        return text
    text = _INVISIBLE.sub("", text)
    if not _may_hold_number(text) and unicodedata.is_normalized("NFKC", text):
        return text  # the usual case, decided without normalising (full-width digits are not NFKC)
    normalised = normalize(text, simplify=False)
    masked = mask_pii(normalised)
    return text if masked == normalised else masked


def contains_pii(text: str) -> bool:
    """True if unmasked phone or ID numbers remain (used by tests and the report's self-check)."""
    return mask_pii(text) != text


def clean_text(text: str | None) -> str:
    """The one function to call before storing or showing citizen text: normalise, then mask."""
    return mask_pii(normalize(text))


def caller_hash(phone: str | None, salt: str) -> str | None:
    """A keyed one-way hash of a caller's phone number, for repeat-caller counts only.

    HMAC-SHA-256 with the secret ``TRIAGE_PII_SALT`` as key (a plain salted SHA-256 of an 11-digit
    number can be brute-forced by anyone who learns the salt's scheme; without the key an HMAC
    cannot). The message is the pre-HMAC hash (:func:`legacy_caller_hash`), so hashes stored before
    the change become today's by :func:`rehash_legacy` alone — no phone numbers needed (migration
    0005 does it). 32 hex characters; a legacy hash has 20."""
    legacy = legacy_caller_hash(phone, salt)
    return rehash_legacy(legacy, salt) if legacy else None


def legacy_caller_hash(phone: str | None, salt: str) -> str | None:
    """The caller hash before HMAC (salted SHA-256, 20 hex characters)."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", normalize(phone))
    if len(digits) < 7:
        return None
    digits = digits[-11:]  # +86 / 0086 prefixes do not make a different caller
    return hashlib.sha256(f"{salt}:{digits}".encode()).hexdigest()[:20]


def rehash_legacy(legacy: str, key: str) -> str:
    """A stored legacy caller hash → the current one (the same caller keeps matching)."""
    return hmac.new(key.encode(), legacy.encode(), hashlib.sha256).hexdigest()[:32]


def mask_phone(phone: str | None) -> str | None:
    """The caller's number as a clerk may see it: 138****5678 for a mobile (or any number with an
    area or country code), only the last four digits of a local number (****5678) — the first three
    as well would leave one digit of an 8-digit number hidden."""
    if not phone:
        return None
    digits = re.sub(r"\D", "", normalize(phone))
    digits = re.sub(r"^(?:0086|86)(?=\d{10,11}$)", "", digits)  # +86 / 0086: show the number itself
    if len(digits) < 7:
        return "****"
    if len(digits) < 11:
        return "****" + digits[-4:]
    return digits[:3] + "****" + digits[-4:]

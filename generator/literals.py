"""How values of each type are written as text (in URLs, and in the patterns the served document states):
one set of regular expressions, used by the document and by the converters alike, so what a client is told
is exactly what is accepted (schemathesis checks both directions). Pure (only `re`): the payload layer checks
constraint bounds with the same forms, so a bound it accepts is one the API can compare against.

Patterns are written in RE2's syntax where they can be, and anchored. Dates are calendar-valid (Feb 29 in
leap years only), times run from 00:00 to 23:59:59.999999, integers stay within 64 bits."""

from __future__ import annotations

import re

INT64_MAX = 2**63 - 1


def at_most(limit: int) -> str:
    """A regex for the decimal numbers 0..limit (no sign, leading zeros allowed)."""
    digits = str(limit)
    parts = [rf"0*[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for index, digit in enumerate(digits):
        if digit != "0":
            rest = len(digits) - index - 1
            below = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            parts.append(f"0*{digits[:index]}{below}" + (f"[0-9]{{{rest}}}" if rest else ""))
    parts.append(f"0*{digits}")
    return "(?:" + "|".join(parts) + ")"


_INT64 = rf"(?:-?{at_most(INT64_MAX)}|-0*9223372036854775808)"
# Within ±1.8e308 (a double's range, which SQLite and clients hold): up to 308 integer digits, or one digit
# and an exponent up to 307, or 1.0-1.7... with exponent 308 (the largest doubles: ±1.7976931348623157e308).
_EXPONENT = r"[eE](?:-[0-9]{1,4}|\+?(?:[0-9]{1,2}|[12][0-9]{2}|30[0-7]))"
_NUMBER = rf"-?(?:[0-9]{{1,308}}(?:\.[0-9]+)?|[0-9](?:\.[0-9]+)?{_EXPONENT}|1(?:\.[0-7][0-9]*)?[eE]\+?308)"
_YEAR = r"(?:[1-9]\d{3}|0[1-9]\d{2}|00[1-9]\d|000[1-9])"
_LEAP_YEAR = r"(?:\d\d(?:0[48]|[2468][048]|[13579][26])|(?:[2468][048]|[13579][26]|0[48])00)"
_DATE = (rf"(?:{_YEAR}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
         rf"|(?:0[13578]|1[02])-31)|{_LEAP_YEAR}-02-29)")
_TIME = r"(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,6})?)?"
_LONGITUDE = r"-?(?:180(?:\.0+)?|(?:1[0-7]\d|\d{1,2})(?:\.\d+)?)"
_LATITUDE = r"-?(?:90(?:\.0+)?|[0-8]?\d(?:\.\d+)?)"
_AMOUNT = r"\d{1,6}(?:\.\d{1,6})?"  # bounded: a duration must fit Python's timedelta (999,999,999 days)
_Y, _MO, _W, _D = (rf"{_AMOUNT}{unit}" for unit in "YMWD")
_H, _MI, _S = (rf"{_AMOUNT}{unit}" for unit in "HMS")
_DATE_PART = rf"(?:{_Y}(?:{_MO})?(?:{_W})?(?:{_D})?|{_MO}(?:{_W})?(?:{_D})?|{_W}(?:{_D})?|{_D})"
_TIME_PART = rf"T(?:{_H}(?:{_MI})?(?:{_S})?|{_MI}(?:{_S})?|{_S})"
_DURATION = rf"-?P(?:{_DATE_PART}(?:{_TIME_PART})?|{_TIME_PART})"  # at least one amount, no lookarounds

# Unanchored forms, to compose (filters, lists); TEXT_PATTERNS below anchors them for a whole value.
TEXT_FORMS = {
    "integer": _INT64,
    "year": r"-?[0-9]{1,4}",
    "number": _NUMBER,
    "boolean": r"(?:true|false)",
    "date": _DATE,
    # offsets within ±15:59, as PostgreSQL's timestamptz takes them
    "datetime": rf"{_DATE}[Tt ]{_TIME}(?:[Zz]|[+-](?:0\d|1[0-5]):?[0-5]\d)?",
    "time": _TIME,
    "yearmonth": rf"{_YEAR}-(?:0[1-9]|1[0-2])",
    "duration": _DURATION,
    "geopoint": rf" *{_LONGITUDE} *, *{_LATITUDE} *",
}
TEXT_PATTERNS = {name: f"^{form}$" for name, form in TEXT_FORMS.items()}
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
KEY_TEXT = {name: TEXT_PATTERNS[name] for name in ("integer", "year", "number", "boolean")}
_COMPILED = {name: re.compile(pattern) for name, pattern in TEXT_PATTERNS.items()}


def written(type_: str, text: str) -> bool:
    """Whether `text` is a value of `type_` as this service writes and reads it (types without a form: any)."""
    compiled = _COMPILED.get(type_)
    return compiled is None or compiled.match(text) is not None

"""The missing-symbol reports' filter grammar (SPEC §6), as pure functions.

:func:`parse_filters` turns query parameters into a :class:`MissingSymbolFilter`
or a dict of errors per parameter; :mod:`.reports` turns a filter into SQL.
"""

import dataclasses
import datetime
import re

from .rawrequest import query_text

BATCH_SIZE = 100
MAX_PAGE = 100_000
MAX_COUNT = 2_147_483_647
SORTS = ("modified_at", "created_at", "count")
SUBSTRING_FIELDS = ("symbol", "debugid", "filename")
UTC = datetime.UTC

_OP = re.compile(r"\s*(>=|<=|>|<|=)?\s*(.*?)\s*\Z", re.S)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
_DATETIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?(Z|[+-]\d{2}:\d{2})?\Z")


class BadParameter(ValueError):
    pass


@dataclasses.dataclass
class MissingSymbolFilter:
    substrings: dict = dataclasses.field(default_factory=dict)  # field -> text
    modified_at: list = dataclasses.field(default_factory=list)  # (op, datetime)
    created_at: list = dataclasses.field(default_factory=list)  # (op, datetime); console only
    count: list = dataclasses.field(default_factory=list)  # (op, int)
    sort: str | None = None
    reverse: bool = False
    page: int = 1

    @property
    def order(self):
        """(column name, descending) as answered in "order_by"."""
        if self.sort is None:
            return "modified_at", True
        return self.sort, self.reverse


def raw_params(query_string):
    """{name: text} from a raw query string (rawrequest.query_text): the last value
    wins; values that are not UTF-8 become None, reported as a bad parameter later."""
    return query_text(query_string)


def _day_start(d):
    return datetime.datetime(d.year, d.month, d.day, tzinfo=UTC)


def parse_time_value(text, now=None):
    """(start datetime, whole-day flag) for a modified_at VALUE."""
    now = now or datetime.datetime.now(UTC)
    low = text.lower()
    if low == "today":
        return _day_start(now), True
    if low == "yesterday":
        return _day_start(now - datetime.timedelta(days=1)), True
    m = _DATE.match(text)
    if m:
        try:
            return datetime.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=UTC), True
        except ValueError:
            raise BadParameter(f"Invalid date {text!r}") from None
    m = _DATETIME.match(text)
    if m:
        tz = UTC
        if m[7] and m[7] != "Z":
            sign = 1 if m[7][0] == "+" else -1
            hours, minutes = int(m[7][1:3]), int(m[7][4:6])
            if hours > 23 or minutes > 59:
                raise BadParameter(f"Invalid time zone in {text!r}")
            tz = datetime.timezone(sign * datetime.timedelta(hours=hours, minutes=minutes))
        try:
            value = datetime.datetime(
                int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6] or 0), tzinfo=tz
            )
        except ValueError:
            raise BadParameter(f"Invalid date/time {text!r}") from None
        return value.astimezone(UTC), False
    raise BadParameter(
        f"Invalid value {text!r}: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS][Z|+HH:MM], today or yesterday"
    )


def parse_time_conditions(text, now=None):
    conditions = []
    for part in text.split(","):
        m = _OP.match(part)
        op, value = m[1] or "=", m[2]
        if not value:
            raise BadParameter(f"Empty condition in {text!r}")
        start, whole_day = parse_time_value(value, now)
        if op == "=" and whole_day:
            conditions.append((">=", start))
            conditions.append(("<", start + datetime.timedelta(days=1)))
        else:
            conditions.append((op, start))
    return conditions


def parse_count_conditions(text):
    conditions = []
    for part in text.split(","):
        m = _OP.match(part)
        op, value = m[1] or "=", m[2]
        if not re.fullmatch(r"[0-9]+", value or ""):
            raise BadParameter(f"Invalid count condition {part.strip()!r}: expected [OP]INTEGER")
        number = int(value)
        if number > MAX_COUNT:
            raise BadParameter(f"Count {number} is larger than {MAX_COUNT}")
        conditions.append((op, number))
    return conditions


def _text_filter(value):
    if "\x00" in value or any(c < " " or c == "\x7f" for c in value):
        raise BadParameter("Control characters are not allowed.")
    if len(value) > 1000:
        raise BadParameter("Too long (at most 1000 characters).")
    return value


def parse_filters(params, now=None, substring_fields=SUBSTRING_FIELDS, time_fields=("modified_at",)):
    """(MissingSymbolFilter, errors dict). ``params``: {name: text or None}.

    The JSON API uses the defaults; the console also filters code_file, code_id
    and created_at.
    """
    f = MissingSymbolFilter()
    errors = {}

    def bad(name, message):
        errors.setdefault(name, []).append(message)

    for name in substring_fields:
        if name in params:
            value = params[name]
            if value is None:
                bad(name, "Invalid characters are not allowed.")
            elif value != "":
                try:
                    f.substrings[name] = _text_filter(value)
                except BadParameter as exc:
                    bad(name, str(exc))
    for name in time_fields:
        value = params.get(name)
        if name in params and value is None:
            bad(name, "Invalid characters are not allowed.")
        elif value:
            try:
                setattr(f, name, parse_time_conditions(value, now))
            except BadParameter as exc:
                bad(name, str(exc))
    value = params.get("count")
    if "count" in params and value is None:
        bad("count", "Invalid characters are not allowed.")
    elif value:
        try:
            f.count = parse_count_conditions(value)
        except BadParameter as exc:
            bad("count", str(exc))
    sort = params.get("sort")
    if "sort" in params and sort != "":
        if sort not in SORTS:
            bad("sort", f"Invalid sort {sort!r}: expected one of {', '.join(SORTS)}")
        else:
            f.sort = sort
    reverse = params.get("reverse")
    if "reverse" in params and reverse != "":
        if reverse is None or reverse.lower() not in ("true", "false"):
            bad("reverse", "Invalid reverse: expected true or false")
        else:
            f.reverse = reverse.lower() == "true"
    page = params.get("page")
    if "page" in params and page != "":
        if page is None or not re.fullmatch(r"[0-9]{1,7}", page) or not 1 <= int(page) <= MAX_PAGE:
            bad("page", f"Invalid page: expected an integer from 1 to {MAX_PAGE}")
        else:
            f.page = int(page)
    return f, errors

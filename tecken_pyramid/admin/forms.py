"""The console's forms: what each one reads from the request and what makes it valid.

Plain frozen dataclasses, no I/O: ``parse(params)`` reads a ``request.POST`` (or
``GET``) mapping the way the console always has (a pattern kept as typed, a note
trimmed, ...), and ``problem()`` answers None or why the form is refused, the
text that follows "Not added: " and the like in the flash. Checks that need the
database (a duplicate, the last superuser) stay in the handlers.
"""

import dataclasses
import re

from ..cli import KEY_SHAPE
from ..rules import check_extension
from ..tokens import MAX_EXPIRES_DAYS, permissions_problem
from ..users import clean_username, password_problem, username_problem

TRUE_VALUES = ("1", "true", "on", "yes")
FALSE_VALUES = ("0", "false", "off", "no")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

MAX_EXTENSION_LENGTH = 100  # the column's size
MAX_PATTERN_LENGTH = 500  # the column's size
MAX_NOTE_LENGTH = 1000
MAX_KEYS = 100
MAX_TOKEN_NOTE_LENGTH = 500  # what tokens.create_token accepts
DAYS = re.compile(r"[0-9]{1,5}")


class Form:
    """A form: a frozen dataclass whose fields say how they are read (:func:`posted`,
    :func:`checkbox`, :func:`yes_or_no`)."""

    @classmethod
    def parse(cls, params):
        return cls(**{f.name: f.metadata["read"](params) for f in dataclasses.fields(cls)})

    def problem(self):
        """None, or why the form is refused."""
        return None


def _reads(read):
    return dataclasses.field(metadata={"read": read})


def posted(name, clean=None):
    """The text sent as ``name`` ("" when absent), passed through ``clean``."""
    return _reads(lambda params: (clean or str)(params.get(name, "")))


def posted_all(name):
    """Every value sent as ``name`` (checkboxes sharing one name), in order."""
    return _reads(lambda params: tuple(params.getall(name)))


def checkbox(name, on=TRUE_VALUES, fold_case=False):
    """On when the value sent is one of ``on`` (as written, or lower-cased)."""

    def read(params):
        value = params.get(name, "")
        return (value.lower() if fold_case else value) in on

    return _reads(read)


def yes_or_no(name):
    """True, False, or None when the value says neither (case and spaces ignored)."""

    def read(params):
        value = params.get(name, "").strip().lower()
        return True if value in TRUE_VALUES else False if value in FALSE_VALUES else None

    return _reads(read)


def nonblank_lines(text):
    return tuple(line.strip() for line in text.splitlines() if line.strip())


@dataclasses.dataclass(frozen=True)
class ExtensionForm(Form):
    # Stored as typed (matching is case-sensitive); only surrounding whitespace,
    # which a paste easily brings along, is dropped.
    extension: str = posted("extension", str.strip)

    def problem(self):
        if not self.extension:
            return "type an extension, for example .sym"
        problem = check_extension(self.extension)
        if problem is None and len(self.extension) > MAX_EXTENSION_LENGTH:
            problem = f"an extension is at most {MAX_EXTENSION_LENGTH} characters"
        return problem


@dataclasses.dataclass(frozen=True)
class RemoveExtensionForm(Form):
    # Removing the last allowed extension refuses every download: said explicitly.
    confirm_empty: bool = checkbox("confirm_empty", on=("yes",))


@dataclasses.dataclass(frozen=True)
class PatternForm(Form):
    # The pattern is kept exactly as typed (a name may contain spaces); the note
    # is free text, trimmed.
    pattern: str = posted("pattern")
    note: str = posted("note", str.strip)

    def problem(self):
        if not self.pattern.strip():
            return "type a pattern, for example */*/file.ptr"
        if len(self.pattern) > MAX_PATTERN_LENGTH:
            return f"a pattern is at most {MAX_PATTERN_LENGTH} characters"
        if CONTROL.search(self.pattern):
            return "a pattern contains no control characters"
        if len(self.note) > MAX_NOTE_LENGTH:
            return f"a note is at most {MAX_NOTE_LENGTH} characters"
        if CONTROL.search(self.note):
            return "a note contains no control characters"
        return None

    def again(self):
        """The query string that shows what was typed again in the form."""
        return {"pattern": self.pattern[:MAX_PATTERN_LENGTH], "note": self.note[:MAX_NOTE_LENGTH]}


@dataclasses.dataclass(frozen=True)
class EnabledForm(Form):
    # The wanted state is explicit, so a repeated submit changes nothing twice.
    enabled: bool = checkbox("enabled", fold_case=True)


def parse_key(raw):
    """(symbol, DEBUGID, filename) or None, as ``tecken-pyramid invalidate`` reads it."""
    raw = raw.strip()
    if raw.startswith("/"):
        raw = raw[1:]  # a pasted download path
    m = KEY_SHAPE.match(raw)
    if not m:
        return None
    return m.group(1), m.group(2).upper(), m.group(3)


@dataclasses.dataclass(frozen=True)
class InvalidateForm(Form):
    lines: tuple[str, ...] = posted("keys", nonblank_lines)

    def problem(self):
        if not self.lines:
            return "give at least one SYMBOL/DEBUGID/FILENAME key."
        if len(self.lines) > MAX_KEYS:
            return f"at most {MAX_KEYS} keys at a time."
        bad = next((line for line in self.lines if parse_key(line) is None), None)
        if bad is not None:
            return f"not a SYMBOL/DEBUGID/FILENAME key: {bad}"
        return None

    def keys(self):
        """The distinct keys, in the order given (the form must be valid)."""
        return list(dict.fromkeys(parse_key(line) for line in self.lines))


@dataclasses.dataclass(frozen=True)
class LookupForm(Form):
    """The cache page's "look a key up now" (a GET form)."""

    key: str = posted("key")
    include_try: bool = checkbox("try")
    refresh: bool = checkbox("refresh")
    each: bool = checkbox("each")
    submitted: bool = _reads(lambda params: "key" in params)

    @classmethod
    def parse(cls, params):
        form = super().parse(params)
        # "Check each location" is on until a submitted form says otherwise.
        return form if form.submitted else dataclasses.replace(form, each=True)

    def fields(self):
        """What the template shows again."""
        return {"key": self.key, "include_try": self.include_try, "refresh": self.refresh, "each": self.each}


@dataclasses.dataclass(frozen=True)
class NewUserForm(Form):
    username: str = posted("username", clean_username)
    password: str = posted("password")
    superuser: bool = checkbox("superuser")

    def problem(self):
        return username_problem(self.username) or password_problem(self.password)


@dataclasses.dataclass(frozen=True)
class PasswordForm(Form):
    password: str = posted("password")

    def problem(self):
        return password_problem(self.password)


@dataclasses.dataclass(frozen=True)
class FlagForm(Form):
    """Make a user (not) a superuser, or (de)activate them: ``value`` says which."""

    value: bool | None = yes_or_no("value")

    def problem(self):
        return "the form did not say what to do." if self.value is None else None


@dataclasses.dataclass(frozen=True)
class TokenForm(Form):
    """A new upload token: whose, what it may do, for how long (empty: no expiry), a
    note; ``once`` is the form's own random value, so sending it again (a reload of
    the page that showed the token) makes no second token."""

    username: str = posted("username", clean_username)
    permissions: tuple[str, ...] = posted_all("permission")
    expires_days: str = posted("expires_days", str.strip)
    note: str = posted("note", str.strip)
    once: str = posted("once")

    def problem(self):
        if not self.username:
            return "choose a user."
        problem = permissions_problem(self.permissions)
        if problem is not None:
            return f"{problem}."
        if self.expires_days and not (
            DAYS.fullmatch(self.expires_days) and 1 <= int(self.expires_days) <= MAX_EXPIRES_DAYS
        ):
            return f"the expiry is a whole number of days from 1 to {MAX_EXPIRES_DAYS}, or empty for never."
        if len(self.note) > MAX_TOKEN_NOTE_LENGTH:
            return f"a note is at most {MAX_TOKEN_NOTE_LENGTH} characters."
        if CONTROL.search(self.note):
            return "a note contains no control characters."
        if not re.fullmatch(r"[0-9a-f]{16,64}", self.once):
            return "the form is out of date; open the tokens page again."
        return None

    def days(self):
        """The expiry in days, None for no expiry (the form must be valid)."""
        return int(self.expires_days) if self.expires_days else None

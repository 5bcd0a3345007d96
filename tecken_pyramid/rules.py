"""Allow list and ignore patterns (SPEC §4), held in memory per process.

A background thread reloads them from the database every
``TECKEN_RULES_REFRESH_SECONDS``; requests only read the current, immutable
:class:`RuleSet` (a reference swap), so no request ever waits on the database.
Until the first successful load the process uses the seed defaults.
"""

import dataclasses
import fnmatch
import logging
import re
import threading
import time

from sqlalchemy import select

from .models import AllowedExtension, IgnorePattern

log = logging.getLogger(__name__)

DEFAULT_IGNORE_PATTERNS = (
    ("*/*/file.ptr", "Debuggers always ask for file.ptr; it is never in the store."),
    (
        "*/000000000000000000000000000000000/*",
        "The 33-zero debug id stack walkers send when they know nothing.",
    ),
)

IGNORED = "ignored"
EXTENSION_NOT_ALLOWED = "extension-not-allowed"

# SPEC §2 step 3: characters a symbol or file name never contains (DEL is allowed,
# as in Tecken). Also the rule for extensions and the symbol-file prefix.
INVALID_NAME_CHARS = re.compile(r"[\x00-\x1f\x80-\xff\\^`><{}\[\]#%\"'~|]")


def invalid_name(symbol, filename):
    """Step 3 of the decision order: True when either name can never be found."""
    return INVALID_NAME_CHARS.search(symbol) is not None or INVALID_NAME_CHARS.search(filename) is not None


def check_extension(ext):
    """Return an error message for an invalid allowed extension, else None."""
    if not ext.startswith("."):
        return "an extension starts with '.'"
    if len(ext) < 2:
        return "an extension needs at least one character after '.'"
    if "/" in ext or re.search(r"\s", ext) or INVALID_NAME_CHARS.search(ext):
        return "an extension contains no '/', whitespace or invalid character"
    return None


@dataclasses.dataclass(frozen=True)
class Pattern:
    id: int | None
    pattern: str
    regex: re.Pattern

    @classmethod
    def compile(cls, pattern, id=None):
        return cls(id, pattern, re.compile(fnmatch.translate(pattern)))


@dataclasses.dataclass(frozen=True)
class RuleSet:
    extensions: tuple
    patterns: tuple  # enabled patterns only, in id order
    source: str  # "seed" or "database"
    loaded_at: float = 0.0

    def decide(self, symbol, debugid, filename):
        """(decision, pattern) for SPEC §2 steps 1-2, or (None, None)."""
        if self.patterns:
            path = f"{symbol}/{debugid}/{filename}"
            for pattern in self.patterns:
                if pattern.regex.match(path):
                    return IGNORED, pattern
        if not filename.endswith(self.extensions):
            return EXTENSION_NOT_ALLOWED, None
        return None, None


def seed_rules(extensions):
    return RuleSet(
        extensions=tuple(extensions),
        patterns=tuple(Pattern.compile(p) for p, _note in DEFAULT_IGNORE_PATTERNS),
        source="seed",
    )


def load_rules(connection):
    exts = (
        connection.execute(select(AllowedExtension.extension).order_by(AllowedExtension.id)).scalars().all()
    )
    rows = connection.execute(
        select(IgnorePattern.id, IgnorePattern.pattern)
        .where(IgnorePattern.enabled.is_(True))
        .order_by(IgnorePattern.id)
    ).all()
    return RuleSet(
        extensions=tuple(exts),
        patterns=tuple(Pattern.compile(p, i) for i, p in rows),
        source="database",
        loaded_at=time.time(),
    )


class RulesService:
    def __init__(self, engine, settings, metrics=None):
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.current = seed_rules(settings.download_file_extensions_allowed)
        self.last_error = None
        self._stop = threading.Event()
        self._thread = None
        self._warned_mismatch = False

    def reload(self):
        """Load the rules once; keep the previous ones on failure. Returns success."""
        try:
            with self.engine.connect() as connection:
                rules = load_rules(connection)
        except Exception as exc:
            self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if self.metrics is not None:
                self.metrics.rules_reload_failures.inc()
            if self.current.source == "seed":
                log.warning("rules not loaded yet, using the seed defaults: %s", self.last_error)
            else:
                log.warning("rules reload failed, keeping the previous rules: %s", self.last_error)
            return False
        first = self.current.source == "seed"
        self.current = rules
        self.last_error = None
        if first:
            log.info(
                "rules loaded: %d extensions, %d enabled ignore patterns",
                len(rules.extensions),
                len(rules.patterns),
            )
            configured = set(self.settings.download_file_extensions_allowed)
            if configured != set(rules.extensions) and not self._warned_mismatch:
                self._warned_mismatch = True
                log.warning(
                    "the extensions setting (%s) differs from the allowed_extension table (%s); "
                    "the table is the source of truth: edit it in the console",
                    ",".join(sorted(configured)),
                    ",".join(sorted(rules.extensions)),
                )
        return True

    def _run(self):
        interval = max(self.settings.rules_refresh_seconds, 0.1)
        while not self._stop.is_set():
            self.reload()
            self._stop.wait(interval)

    def start(self):
        if self._thread is None:
            log.info("rules: using the seed defaults until the first load from the database")
            self._thread = threading.Thread(target=self._run, name="rules-reloader", daemon=True)
            self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def status(self):
        rules = self.current
        if rules.source == "seed":
            error = f": {self.last_error}" if self.last_error else ""
            return f"rules: seed defaults (not loaded from the database yet{error})"
        age = time.time() - rules.loaded_at
        counts = f"{len(rules.extensions)} extensions, {len(rules.patterns)} patterns"
        return f"rules loaded {age:.0f}s ago ({counts})"


def includeme(config):
    registry = config.registry
    registry.rules = RulesService(registry.dbengine, registry.tecken, registry.metrics)

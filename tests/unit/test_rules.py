"""SPEC §4: allow list and ignore patterns, decided in memory, reloaded from the database."""

import datetime
import logging
import types

import pytest
from sqlalchemy import insert, update

from tecken_pyramid.db import make_engine
from tecken_pyramid.models import AllowedExtension, IgnorePattern
from tecken_pyramid.rules import (
    EXTENSION_NOT_ALLOWED,
    IGNORED,
    Pattern,
    RuleSet,
    RulesService,
    load_rules,
    seed_rules,
)

DEFAULT_EXTENSIONS = (".sym", ".dl_", ".ex_", ".pd_", ".dbg.gz", ".tar.bz2")
UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/x"
ZEROS = "0" * 33


def rules(patterns=(), extensions=(".sym",)):
    return RuleSet(
        extensions=tuple(extensions),
        patterns=tuple(Pattern.compile(p, i) for i, p in enumerate(patterns)),
        source="database",
    )


# -- decide ----------------------------------------------------------------------------------------
def test_pattern_decides_before_extension():
    r = rules(["*/*/file.ptr"])
    # file.ptr is not an allowed extension either: the pattern decides first.
    decision, pattern = r.decide("xul.pdb", "ABC", "file.ptr")
    assert decision == IGNORED
    assert pattern.pattern == "*/*/file.ptr"
    assert r.decide("xul.pdb", "ABC", "xul.exe") == (EXTENSION_NOT_ALLOWED, None)
    assert r.decide("xul.pdb", "ABC", "xul.sym") == (None, None)


def test_first_matching_pattern_is_reported():
    r = rules(["xul.pdb/*", "*/*/xul.sym"])
    assert r.decide("xul.pdb", "ABC", "xul.sym")[1].pattern == "xul.pdb/*"


def test_star_matches_slash():
    r = rules(["*/file.ptr", "xul.pdb/*"])
    assert r.decide("a.pdb", "ABC", "file.ptr")[0] == IGNORED  # '*' spans symbol/debugid
    assert r.decide("xul.pdb", "ABC", "anything.sym")[0] == IGNORED  # '*' spans debugid/filename
    assert r.decide("other.pdb", "ABC", "other.sym") == (None, None)


def test_fnmatchcase_is_case_sensitive_and_anchored():
    r = rules(["XUL.pdb/*", "*.sym.bak"])
    assert r.decide("xul.pdb", "ABC", "xul.sym") == (None, None)
    assert r.decide("XUL.pdb", "ABC", "xul.sym")[0] == IGNORED
    # Anchored at both ends: a pattern is a whole-path match, not a search.
    r = rules(["xul.pdb"])
    assert r.decide("xul.pdb", "ABC", "xul.sym") == (None, None)


def test_question_mark_and_character_classes():
    r = rules(["?.pdb/*", "*/[0-9]*/*"])
    assert r.decide("a.pdb", "ABC", "a.sym")[0] == IGNORED
    assert r.decide("ab.pdb", "ABC", "a.sym") == (None, None)
    assert r.decide("ab.pdb", "1BC", "a.sym")[0] == IGNORED


def test_debug_id_matched_as_requested():
    r = rules(["*/abc/*"])
    assert r.decide("x.pdb", "abc", "x.sym")[0] == IGNORED
    assert r.decide("x.pdb", "ABC", "x.sym") == (None, None)


def test_seed_patterns():
    r = seed_rules(DEFAULT_EXTENSIONS)
    assert r.source == "seed"
    assert r.decide("xul.pdb", "ABC", "file.ptr")[0] == IGNORED
    assert r.decide("xul.pdb", ZEROS, "xul.sym")[0] == IGNORED
    assert r.decide("xul.pdb", "0" * 32, "xul.sym") == (None, None)
    assert r.decide("xul.pdb", "ABC", "xul.sym") == (None, None)
    assert r.decide("xul.pdb", "ABC", "xul.dbg.gz") == (None, None)
    assert r.decide("xul.pdb", "ABC", "xul.gz")[0] == EXTENSION_NOT_ALLOWED


def test_extension_endswith_case_sensitive():
    r = rules(extensions=(".sym", ".dbg.gz"))
    assert r.decide("x", "AB", "x.sym") == (None, None)
    assert r.decide("x", "AB", "x.SYM")[0] == EXTENSION_NOT_ALLOWED
    assert r.decide("x", "AB", "x.Sym")[0] == EXTENSION_NOT_ALLOWED
    assert r.decide("x", "AB", "x.dbg.gz") == (None, None)
    assert r.decide("x", "AB", "x.gz")[0] == EXTENSION_NOT_ALLOWED
    assert r.decide("x", "AB", "x.sym.txt")[0] == EXTENSION_NOT_ALLOWED
    assert r.decide("x", "AB", ".sym") == (None, None)  # endswith, nothing more
    r = rules(extensions=(".SYM",))
    assert r.decide("x", "AB", "x.SYM") == (None, None)
    assert r.decide("x", "AB", "x.sym")[0] == EXTENSION_NOT_ALLOWED


def test_empty_allow_list_allows_nothing():
    r = rules(extensions=())
    assert r.decide("x", "AB", "x.sym")[0] == EXTENSION_NOT_ALLOWED


# -- load from a real database ---------------------------------------------------------------------
def test_load_seeded_rules(db):
    engine = db.engine()
    try:
        with engine.connect() as conn:
            r = load_rules(conn)
    finally:
        engine.dispose()
    assert r.source == "database"
    assert set(r.extensions) == set(DEFAULT_EXTENSIONS)
    assert [p.pattern for p in r.patterns] == ["*/*/file.ptr", f"*/{ZEROS}/*"]


def test_disabled_patterns_ignored(db):
    now = datetime.datetime.now(datetime.UTC)
    engine = db.engine()
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(IgnorePattern),
                [
                    {
                        "pattern": "disabled.pdb/*",
                        "enabled": False,
                        "note": "",
                        "created_by": "test",
                        "created_at": now,
                    },
                    {
                        "pattern": "enabled.pdb/*",
                        "enabled": True,
                        "note": "",
                        "created_by": "test",
                        "created_at": now,
                    },
                ],
            )
            conn.execute(
                update(IgnorePattern).where(IgnorePattern.pattern == "*/*/file.ptr").values(enabled=False)
            )
            conn.execute(
                insert(AllowedExtension), [{"extension": ".foo", "created_by": "test", "created_at": now}]
            )
        with engine.connect() as conn:
            r = load_rules(conn)
    finally:
        engine.dispose()
    names = [p.pattern for p in r.patterns]
    assert "disabled.pdb/*" not in names
    assert "*/*/file.ptr" not in names
    assert names == [f"*/{ZEROS}/*", "enabled.pdb/*"]  # in id order
    assert r.decide("disabled.pdb", "AB", "x.sym") == (None, None)
    assert r.decide("enabled.pdb", "AB", "x.sym")[0] == IGNORED
    assert r.decide("x.pdb", "AB", "file.ptr")[0] == EXTENSION_NOT_ALLOWED
    assert r.decide("x.pdb", "AB", "x.foo") == (None, None)


# -- RulesService ----------------------------------------------------------------------------------
def service_settings(extensions=DEFAULT_EXTENSIONS):
    return types.SimpleNamespace(download_file_extensions_allowed=tuple(extensions), rules_refresh_seconds=5)


def test_starts_from_seed_defaults_and_keeps_them_when_the_database_fails():
    engine = make_engine(UNREACHABLE)
    try:
        service = RulesService(engine, service_settings((".sym", ".foo")))
        assert service.current.source == "seed"
        assert service.current.extensions == (".sym", ".foo")
        assert [p.pattern for p in service.current.patterns] == ["*/*/file.ptr", f"*/{ZEROS}/*"]
        seed = service.current
        assert service.reload() is False
        assert service.current is seed
        assert service.last_error
        assert "seed" in service.status()
    finally:
        engine.dispose()


def test_failed_reload_keeps_previous_rules(db):
    good = db.engine()
    bad = make_engine(UNREACHABLE)
    try:
        service = RulesService(good, service_settings())
        assert service.reload() is True
        loaded = service.current
        assert loaded.source == "database"
        service.engine = bad
        assert service.reload() is False
        assert service.current is loaded
        assert service.last_error
        # Back again: the next reload succeeds.
        service.engine = good
        assert service.reload() is True
        assert service.current.source == "database"
        assert service.last_error is None
    finally:
        good.dispose()
        bad.dispose()


def test_mismatch_warned_once_on_first_load(db, caplog):
    engine = db.engine()
    try:
        service = RulesService(engine, service_settings((".sym", ".other")))
        with caplog.at_level(logging.WARNING, logger="tecken_pyramid.rules"):
            assert service.reload()
            assert service.reload()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "differs" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        engine.dispose()


def test_no_warning_when_the_setting_matches(db, caplog):
    engine = db.engine()
    try:
        service = RulesService(engine, service_settings())
        with caplog.at_level(logging.WARNING, logger="tecken_pyramid.rules"):
            assert service.reload()
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        engine.dispose()


def test_background_thread_loads_without_delaying_start(db):
    import time

    engine = db.engine()
    service = RulesService(
        engine,
        types.SimpleNamespace(download_file_extensions_allowed=DEFAULT_EXTENSIONS, rules_refresh_seconds=0.1),
    )
    try:
        started = time.monotonic()
        service.start()
        assert time.monotonic() - started < 0.5
        end = time.monotonic() + 10
        while service.current.source != "database" and time.monotonic() < end:
            time.sleep(0.01)
        assert service.current.source == "database"
    finally:
        service.stop()
        engine.dispose()


@pytest.mark.parametrize("source", ["seed", "database"])
def test_status_text(source):
    service = RulesService(None, service_settings())
    if source == "database":
        service.current = rules(["a/*"], DEFAULT_EXTENSIONS)
    assert isinstance(service.status(), str) and service.status()

"""The console's one mutation path (admin.common.console_action), without an app."""

import types
import urllib.parse

import pytest

from tecken_pyramid.admin import common


class FakeSession:
    def __init__(self):
        self.calls = []

    def commit(self):
        self.calls.append("commit")

    def rollback(self):
        self.calls.append("rollback")


class FakeRequest:
    def __init__(self, reload_ok=True):
        self.dbsession = FakeSession()
        self.flashes = []
        self.session = types.SimpleNamespace(
            flash=lambda message, queue: self.flashes.append((queue, message))
        )
        rules = types.SimpleNamespace(reload=lambda: self.dbsession.calls.append("reload") or reload_ok)
        tecken = types.SimpleNamespace(public_url="https://symbols.example.org")
        self.registry = types.SimpleNamespace(rules=rules, tecken=tecken)

    def route_path(self, name, _query=None, **kw):
        return (
            f"/{name}"
            + "".join(f"/{v}" for v in kw.values())
            + (f"?{urllib.parse.urlencode(_query)}" if _query else "")
        )


def action(outcome, **options):
    def handler(request):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    # The venusian registration is inert until a scan; the wrapped view is callable as is.
    return common.console_action("test.action", then="test.list", **options)(handler)


def test_done_commits_reloads_flashes_and_redirects():
    request = FakeRequest()
    response = action(common.Done("Added."), reload_rules=True)(request)
    assert response.status_int == 303
    assert response.location == "https://symbols.example.org/test.list"
    assert request.dbsession.calls == ["commit", "reload"]
    assert request.flashes == [("info", "Added.")]


def test_refused_rolls_back_and_flashes_an_error_where_it_says():
    request = FakeRequest()
    refusal = common.Refused("Not saved: no.", "test.edit", query={"a": "b"}, id=7)
    response = action(refusal, reload_rules=True)(request)
    assert response.location == "https://symbols.example.org/test.edit/7?a=b"
    assert request.dbsession.calls == ["rollback"]
    assert request.flashes == [("error", "Not saved: no.")]


def test_nothing_changed_reloads_nothing():
    request = FakeRequest()
    action(common.Done("Nothing changed.", changed=False), reload_rules=True)(request)
    assert request.dbsession.calls == ["commit"]


def test_a_failed_reload_is_flashed_before_the_message():
    request = FakeRequest(reload_ok=False)
    action(common.Done("Removed .sym.", "error"), reload_rules=True)(request)
    assert [queue for queue, _ in request.flashes] == ["error", "error"]
    assert request.flashes[0][1].startswith("Saved, but this process could not reload its rules")
    assert request.flashes[1][1] == "Removed .sym."


def test_after_commit_runs_after_the_commit_and_before_the_flash():
    request = FakeRequest()
    done = common.Done("Reset.", after_commit=lambda: request.dbsession.calls.append(list(request.flashes)))
    action(done)(request)
    assert request.dbsession.calls == ["commit", []]
    assert request.flashes == [("info", "Reset.")]


def test_any_other_exception_propagates_uncommitted():
    request = FakeRequest()
    with pytest.raises(KeyError):
        action(KeyError("x"))(request)
    assert request.dbsession.calls == []

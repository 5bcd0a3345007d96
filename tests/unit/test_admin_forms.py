"""The console's forms (tecken_pyramid.admin.forms): parsing and validation, no app."""

import pytest
from webob.multidict import MultiDict

from tecken_pyramid.admin import forms


def post(**values):
    return MultiDict(values)


# -- the field readers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, on",
    [
        ("1", True),
        ("true", True),
        ("on", True),
        ("yes", True),
        ("TRUE", False),
        (" yes", False),
        ("", False),
        ("0", False),
    ],
)
def test_a_checkbox_is_on_only_for_its_values_as_written(value, on):
    assert forms.NewUserForm.parse(post(superuser=value)).superuser is on


def test_the_enabled_box_ignores_case_but_not_spaces():
    assert forms.EnabledForm.parse(post(enabled="TRUE")).enabled is True
    assert forms.EnabledForm.parse(post(enabled=" true")).enabled is False
    assert forms.EnabledForm.parse(post()).enabled is False


@pytest.mark.parametrize(
    "value, wanted",
    [("1", True), (" Yes ", True), ("OFF", False), ("no", False), ("", None), ("maybe", None)],
)
def test_a_flag_says_yes_no_or_nothing(value, wanted):
    form = forms.FlagForm.parse(post(value=value))
    assert form.value is wanted
    assert (form.problem() is None) is (wanted is not None)


def test_the_last_value_of_a_repeated_field_wins():
    params = MultiDict([("extension", ".sym"), ("extension", ".pdb")])
    assert forms.ExtensionForm.parse(params).extension == ".pdb"


# -- extensions ----------------------------------------------------------------------------------
def test_an_extension_is_trimmed_and_checked():
    assert forms.ExtensionForm.parse(post(extension="  .sym\n")) == forms.ExtensionForm(".sym")
    assert forms.ExtensionForm(".sym").problem() is None
    assert forms.ExtensionForm("").problem() == "type an extension, for example .sym"
    assert forms.ExtensionForm("sym").problem()  # no leading dot (rules.check_extension)
    assert "at most 100" in forms.ExtensionForm("." + "a" * 100).problem()


def test_removing_the_last_extension_needs_exactly_yes():
    assert forms.RemoveExtensionForm.parse(post(confirm_empty="yes")).confirm_empty is True
    assert forms.RemoveExtensionForm.parse(post(confirm_empty="on")).confirm_empty is False
    assert forms.RemoveExtensionForm.parse(post()).confirm_empty is False


# -- ignore patterns -----------------------------------------------------------------------------
def test_a_pattern_is_kept_as_typed_and_the_note_trimmed():
    form = forms.PatternForm.parse(post(pattern=" */*/a b.ptr ", note="  why \n"))
    assert form == forms.PatternForm(" */*/a b.ptr ", "why")
    assert form.problem() is None


@pytest.mark.parametrize(
    "pattern, note, problem",
    [
        ("  ", "", "type a pattern, for example */*/file.ptr"),
        ("x" * 501, "", "a pattern is at most 500 characters"),
        ("a\tb", "", "a pattern contains no control characters"),
        ("a\x7fb", "", "a pattern contains no control characters"),
        ("*.ptr", "n" * 1001, "a note is at most 1000 characters"),
        ("*.ptr", "a\x00", "a note contains no control characters"),
    ],
)
def test_a_pattern_problem(pattern, note, problem):
    assert forms.PatternForm(pattern, note).problem() == problem


def test_a_refused_pattern_is_shown_again_cut_to_the_column_sizes():
    again = forms.PatternForm("p" * 600, "n" * 1200).again()
    assert again == {"pattern": "p" * 500, "note": "n" * 1000}


# -- cache ---------------------------------------------------------------------------------------
D = "0123456789ABCDEF0123456789ABCDEF0"


def test_keys_to_invalidate_are_one_a_line_distinct_and_upper_cased():
    form = forms.InvalidateForm.parse(post(keys=f"\n xul.pdb/{D.lower()}/xul.sym \n\n/xul.pdb/{D}/xul.sym\n"))
    assert form.problem() is None
    assert form.keys() == [("xul.pdb", D, "xul.sym")]


@pytest.mark.parametrize(
    "keys, problem",
    [
        ("", "give at least one SYMBOL/DEBUGID/FILENAME key."),
        (" \n\t\n", "give at least one SYMBOL/DEBUGID/FILENAME key."),
        ("\n".join([f"a/{D}/a.sym"] * 101), "at most 100 keys at a time."),
        (f"a/{D}/a.sym\nnot-a-key\nalso bad", "not a SYMBOL/DEBUGID/FILENAME key: not-a-key"),
        ("a/XYZ/a.sym", "not a SYMBOL/DEBUGID/FILENAME key: a/XYZ/a.sym"),
    ],
)
def test_keys_to_invalidate_problem(keys, problem):
    assert forms.InvalidateForm.parse(post(keys=keys)).problem() == problem


def test_the_lookup_form_checks_each_location_until_a_submitted_form_says_not():
    assert forms.LookupForm.parse(post()).fields() == {
        "key": "",
        "include_try": False,
        "refresh": False,
        "each": True,
    }
    submitted = forms.LookupForm.parse(post(key="a/b/c", refresh="1"))
    assert submitted.submitted
    assert submitted.fields() == {"key": "a/b/c", "include_try": False, "refresh": True, "each": False}
    assert forms.LookupForm.parse(post(key="", each="on", **{"try": "yes"})).fields()["include_try"]


# -- users ---------------------------------------------------------------------------------------
def test_a_new_user_is_trimmed_and_checked_by_the_user_rules():
    form = forms.NewUserForm.parse(post(username="  alice ", password="long-enough", superuser="1"))
    assert form == forms.NewUserForm("alice", "long-enough", True)
    assert form.problem() is None
    assert forms.NewUserForm("", "long-enough", False).problem() == "A username is required."
    assert forms.NewUserForm("bob", "short", False).problem() == "A password has at least 8 characters."
    assert forms.PasswordForm.parse(post(password=" " * 8)).problem() is None
    assert forms.PasswordForm.parse(post()).problem() == "A password has at least 8 characters."

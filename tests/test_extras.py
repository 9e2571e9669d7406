"""tests/extras.py: a missing optional extra skips on a developer's machine and fails under CI
or INFERTUNE_REQUIRE_EXTRAS=1; an installed one is simply imported."""
from __future__ import annotations

import json

import pytest
from extras import extras_required, require_extra

MISSING = "infertune_no_such_extra_module"


@pytest.fixture
def no_ci(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("INFERTUNE_REQUIRE_EXTRAS", raising=False)


def test_installed_module_is_returned(no_ci):
    assert require_extra("json") is json


def test_missing_extra_skips_with_its_reason(no_ci):
    assert not extras_required()
    with pytest.raises(pytest.skip.Exception, match=f"{MISSING} is not installed .extra .nncf."):
        require_extra(MISSING, "nncf")


@pytest.mark.parametrize("name,value", [("CI", "true"), ("CI", "1"),
                                        ("INFERTUNE_REQUIRE_EXTRAS", "1")])
def test_missing_extra_fails_where_extras_are_required(no_ci, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert extras_required()
    with pytest.raises(pytest.fail.Exception, match="requires the extras"):
        require_extra(MISSING)


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_set_to_false_does_not_require(no_ci, monkeypatch, value):
    monkeypatch.setenv("CI", value)
    assert not extras_required()

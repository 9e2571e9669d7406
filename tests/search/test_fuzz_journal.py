"""Property tests for the run-directory journal reader (`search/journal.py`, written by the
optimize work): any bytes in `journal.jsonl` give a Journal (garbled lines dropped and
reported) or a one-line InfertuneError, never another exception."""
from __future__ import annotations

import json

from fuzz_targets import check_outcome, mutated_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import pytest

from infertune.search import journal

pytestmark = pytest.mark.fuzz

REAL = b"".join(json.dumps(e).encode() + b"\n" for e in (
    {"kind": "candidate", "id": "abc123", "status": "ok", "latency_ms": {"p50": 1.5}},
    {"kind": "accuracy", "id": "abc123", "top1": 0.98, "n": 1000},
    {"kind": "candidate", "id": "def456", "status": "failed", "reason": "ORT: bad graph"}))


def read(folder, data: bytes):
    path = folder / "journal.jsonl"
    path.write_bytes(data)
    return journal.Journal(path)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(mutated_bytes(REAL), st.binary(max_size=200),
                 st.lists(st.text(max_size=40)).map(lambda ls: "\n".join(ls).encode())))
def test_journal_bytes_read_or_are_refused(tmp_path, data):
    outcome = check_outcome(lambda: read(tmp_path, data))
    if data == REAL:
        assert outcome == "ok"


def test_torn_last_line_is_dropped_and_reported(tmp_path):
    j = read(tmp_path, REAL[:-7])
    assert set(j.entries) == {("candidate", "abc123"), ("accuracy", "abc123")}
    assert j.dropped == ["line 3"]


# Found by fuzzing: json.loads raises a plain ValueError (not JSONDecodeError) for an integer
# of more than 4300 digits; journal._parse now catches ValueError.
def test_integer_of_5000_digits_is_a_dropped_line(tmp_path):
    j = read(tmp_path, REAL + b'{"kind":"a","id":"b","x":' + b"9" * 5000 + b"}\n")
    assert j.dropped == ["line 4"]

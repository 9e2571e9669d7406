"""The journal a run resumes from, and the run lock."""
import os

import pytest

from infertune.search.journal import Journal, RunLock, RunLocked


def test_entries_replay_in_order_latest_wins(tmp_path):
    j = Journal(tmp_path / "journal.jsonl")
    j.append("screen", "a", {"record": {"status": "screened"}})
    j.append("full", "a", {"record": {"status": "ok", "p50": 1.5}})
    j.append("screen", "a", {"record": {"status": "failed"}})
    again = Journal(tmp_path / "journal.jsonl")
    assert again.get("full", "a")["record"] == {"status": "ok", "p50": 1.5}
    assert again.get("screen", "a")["record"]["status"] == "failed"
    assert again.get("full", "b") is None and again.dropped == []


def test_a_torn_last_line_is_dropped_and_the_next_append_stays_whole(tmp_path):
    path = tmp_path / "journal.jsonl"
    j = Journal(path)
    j.append("screen", "a", {"record": {}})
    with open(path, "ab") as f:               # a writer killed in the middle of a line
        f.write(b'{"kind":"full","id":"a","rec')
    j2 = Journal(path)
    assert j2.dropped == ["line 2"] and j2.get("full", "a") is None
    j2.append("full", "b", {"record": {"ok": True}})
    j3 = Journal(path)
    assert j3.get("full", "b")["record"] == {"ok": True}
    assert j3.dropped == ["line 2"]
    assert path.read_bytes().endswith(b"\n")


def test_garbage_lines_are_dropped_not_fatal(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_bytes(b'[1,2]\n{"kind":1,"id":"x"}\n\xff\xfe\n{"kind":"k","id":"i"}\n')
    j = Journal(path)
    assert list(j.entries) == [("k", "i")]
    assert j.dropped == ["line 1", "line 2", "line 3"]


def test_a_second_run_on_the_same_directory_is_refused(tmp_path):
    with RunLock(tmp_path):
        assert (tmp_path / ".lock").read_text() == str(os.getpid())
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):  # released on exit
        pass

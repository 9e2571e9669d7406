"""Outputs are atomic and their failures are one line; inputs are never written.

A full disk is simulated by making the write raise OSError(ENOSPC); a read-only folder by
making the temporary file's creation raise EACCES (tests run as root here, and root ignores
permission bits, so the chmod-based test runs only for an ordinary user).
"""
from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat

import pytest

from infertune import _atomic
from infertune.cli import main
from infertune.errors import OutputError

CFG = """[net]
width=8
height=8
channels=3
[convolutional]
batch_normalize=1
filters=4
size=3
stride=1
pad=1
activation=leaky
[avgpool]
"""


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _digest(folder) -> dict[str, tuple[str, int]]:
    """sha256 and mtime (ns) of every file under `folder`."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "inputs" / "tiny.cfg"
    path.parent.mkdir()
    path.write_text(CFG)
    return path


def test_full_disk_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    dest = tmp_path / "out.json"
    dest.write_text("old")
    monkeypatch.setattr("pathlib.Path.write_bytes", _enospc)
    with pytest.raises(OutputError) as err:
        _atomic.write_text(dest, "new")
    assert str(err.value) == f"{dest}: cannot write output: No space left on device"
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_unwritable_folder_is_one_line_naming_the_path(tmp_path, monkeypatch):
    def denied(*_args, **_kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(_atomic.tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match="Permission denied") as err:
        _atomic.write_bytes(tmp_path / "x.bin", b"1")
    assert err.value.path == str(tmp_path / "x.bin")


def test_parent_that_is_a_file_is_an_output_error(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(OutputError, match="afile"):
        _atomic.check_writable(tmp_path / "afile" / "m.onnx")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permission bits")
def test_read_only_folder_by_chmod(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            _atomic.write_text(folder / "a.txt", "x")
    finally:
        folder.chmod(stat.S_IRWXU)


def test_other_errors_in_the_block_are_not_disguised(tmp_path):
    with pytest.raises(FileNotFoundError):
        with _atomic.atomic_path(tmp_path / "x") as tmp:
            shutil.copyfile(tmp_path / "missing", tmp)  # the caller's own bug keeps its type
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
def test_cli_export_to_a_full_disk_is_one_line_and_exit_2(capsys, tmp_path, cfg, monkeypatch):
    import onnx

    out = tmp_path / "out" / "m.onnx"
    monkeypatch.setattr(onnx, "save", _enospc)  # fails while writing the temporary file
    code = main(["export", str(cfg), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err == f"infertune: error: {out}: cannot write output: No space left on device\n"
    assert list(out.parent.iterdir()) == []  # neither the output nor a temporary or stage


@pytest.mark.e2e
def test_cli_export_and_apply_under_a_file_fail_before_working(capsys, tmp_path, cfg):
    (tmp_path / "afile").write_text("")
    for argv in (["export", str(cfg)], ["apply", str(cfg), "--pass", "fold_bn"]):
        code = main([*argv, "--out", str(tmp_path / "afile" / "m.onnx")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith(f"infertune: error: {tmp_path / 'afile'}")
        assert err.count("\n") == 1


@pytest.mark.e2e
def test_load_export_and_apply_never_write_their_inputs(capsys, tmp_path, cfg):
    from infertune.load.darknet import load_darknet, write_weights

    write_weights(load_darknet(cfg).obj, cfg.with_suffix(".weights"))
    before = _digest(cfg.parent)
    model = f"{cfg}:{cfg.with_suffix('.weights')}"
    assert main(["export", model, "--out", str(tmp_path / "o" / "m.onnx")]) == 0
    assert main(["export", str(tmp_path / "o" / "m.onnx"), "--out", str(tmp_path / "o2.onnx")]) == 0
    onnx_before = _digest(tmp_path / "o")
    assert main(["apply", str(tmp_path / "o" / "m.onnx"), "--pass", "cleanup",
                 "--out", str(tmp_path / "a.onnx")]) == 0
    assert main(["apply", model, "--pass", "fold_bn", "--out", str(tmp_path / "b.pt")]) == 0
    capsys.readouterr()
    assert _digest(cfg.parent) == before and len(before) == 2
    assert _digest(tmp_path / "o") == onnx_before

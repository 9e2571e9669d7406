"""The layering in `.importlinter` (docs/layout.md, "Layers") holds: every module imports only
from the layers below its own. import-linter reads imports inside functions too, so a local
import cannot hide an upward dependency."""
from __future__ import annotations

from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contract_is_kept(capsys):
    code = lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert code == 0, report
    assert "1 kept, 0 broken" in report, report


def test_a_broken_layer_fails_the_contract(tmp_path, capsys):
    """The same check with the layers of one real import reversed (infertune.registry imports
    infertune.errors) must fail: the test above cannot pass by checking nothing."""
    config = tmp_path / "reversed.ini"
    config.write_text("[importlinter]\nroot_package = infertune\n\n"
                      "[importlinter:contract:reversed]\nname = reversed\ntype = layers\n"
                      "containers = infertune\nlayers =\n    errors\n    registry\n")
    assert lint_imports(config_filename=str(config), no_cache=True, no_logo=True) == 1
    assert "infertune.registry is not allowed to import infertune.errors" in capsys.readouterr().out

"""The layering in `.importlinter` (docs/layout.md, "Layers") holds: every module imports only
from the layers below its own. import-linter reads imports inside functions too, so a local
import cannot hide an upward dependency. It runs in a child process: its console output must
not depend on what earlier tests did to this process's streams (TensorFlow's logging)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = ("import sys; from importlinter.cli import lint_imports; "
        "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))")


def _lint(config: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", LINT, str(config)], capture_output=True,
                          text=True, cwd=ROOT, timeout=300)


def test_import_linter_contract_is_kept():
    out = _lint(ROOT / ".importlinter")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout, out.stdout


def test_a_broken_layer_fails_the_contract(tmp_path):
    """The same check with the layers of one real import reversed (infertune.registry imports
    infertune.errors) must fail: the test above cannot pass by checking nothing."""
    config = tmp_path / "reversed.ini"
    config.write_text("[importlinter]\nroot_package = infertune\n\n"
                      "[importlinter:contract:reversed]\nname = reversed\ntype = layers\n"
                      "containers = infertune\nlayers =\n    errors\n    registry\n")
    out = _lint(config)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "infertune.registry is not allowed to import infertune.errors" in out.stdout

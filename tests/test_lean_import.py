"""`import infertune` must not import any ML framework (torchao's test_lean_import idea)."""
import subprocess
import sys

HEAVY = ("torch", "onnx", "onnxruntime", "openvino", "numpy")


def test_import_infertune_imports_no_framework():
    code = ("import sys, infertune, infertune.cli, infertune.registry, infertune.types;"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_cli_help_imports_no_framework():
    """Nor rich: cli/ imports it where a table is drawn, so `infertune --help` stays quick."""
    code = ("import sys, contextlib, io\nfrom infertune.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            f"print([m for m in {HEAVY + ('rich',)!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout

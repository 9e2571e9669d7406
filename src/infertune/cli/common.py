"""What every `infertune` command shares: the model-loading flags (→ one `LoadOptions`), the
`--json` flag, argument types, the exit-2 one-line error path, and the small formatting
helpers of the terminal renderers (rich, on stdout)."""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..errors import InfertuneError
from ..load import LoadOptions

if TYPE_CHECKING:  # rich loads where a table is drawn, not on `infertune --help`
    from rich.console import Console

MODEL_HELP = ("zoo name (see `infertune zoo`), NET.cfg[:NET.weights], model.onnx, TorchScript or "
              "checkpoint .pt, or package.module:factory (with --trust-code)")


@dataclass(frozen=True)
class Parents:
    """The parent parsers a subcommand inherits: `common` (--json), `model` (loading + --json)."""

    common: list[argparse.ArgumentParser]
    model: list[argparse.ArgumentParser]


def parents() -> Parents:
    common = [_json_flag()]
    return Parents(common=common, model=[_model_options(), *common])


# --------------------------------------------------------------------------- argument types


def parse_size(text: str) -> tuple[int, int]:
    """'448x448', '448X448' or '448' -> (448, 448)."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (expected HxW, e.g. 448x448)")
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (expected HxW, e.g. 448x448)")
    return size  # type: ignore[return-value]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, not {value}")
    return value


# --------------------------------------------------------------------------- shared flags


def _model_options() -> argparse.ArgumentParser:
    """Flags shared by every command that loads a model (read back by `load_options`)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model loading")
    g.add_argument("--input-size", type=parse_size, metavar="HxW",
                   help="input height x width (default: the model's own)")
    g.add_argument("--num-classes", type=int,
                   help="classes of the head (zoo models, checkpoints, ONNX detectors)")
    g.add_argument("--arch", help="architecture of a state-dict checkpoint (zoo name or NET.cfg)")
    g.add_argument("--trust-code", action="store_true",
                   help="allow MODEL to be package.module:factory (imports and runs that code)")
    g.add_argument("--allow-partial", action="store_true",
                   help="accept Darknet weights covering only the first layers (.conv.N files)")
    g.add_argument("--bn-eps", choices=("cpu", "gpu"), default="cpu",
                   help="Darknet batch-norm epsilon: cpu = x/(sqrt(var)+1e-6) as CPU Darknet "
                        "(default); gpu = x/sqrt(var+1e-5) as GPU Darknet and AlexeyAB")
    g.add_argument("--seed", type=int, default=0, help="seed for random weights (default 0)")
    g.add_argument("--detector", metavar="KIND[:KEY=VALUE,...]",
                   help="decode an ONNX detector's outputs: yolo or region (raw per-head maps "
                        "as Darknet exports them; needs --anchors; keys scale_x_y, new_coords, "
                        "nms_kind, beta_nms / softmax, background) or ultralytics ((B, 4 + "
                        "classes, N) decoded boxes; recognised without this flag when its "
                        "shape is unambiguous); every kind takes pad= (letterbox grey, 0-1)")
    g.add_argument("--anchors", metavar="W,H,...",
                   help="anchors of a yolo/region ONNX detector as in its cfg: one list for "
                        "every head (the largest map takes the first ones) or one group per "
                        "output separated by ';' (implies --detector yolo)")
    return p


def _json_flag() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    return p


def load_options(args: argparse.Namespace) -> LoadOptions:
    """The model-loading flags as the one value every loader takes."""
    return LoadOptions(input_size=args.input_size, num_classes=args.num_classes, arch=args.arch,
                       trust_code=args.trust_code, allow_partial=args.allow_partial,
                       bn_eps=args.bn_eps, seed=args.seed, detector=args.detector,
                       anchors=args.anchors)


# --------------------------------------------------------------------------- running


def run_command(args: argparse.Namespace) -> int:
    """Runs the parsed command: its result as JSON with --json (the command rendered it
    otherwise); a user error is one line on stderr and exit status 2."""
    run: Callable[[argparse.Namespace], Any] = args.run
    try:
        result = run(args)
    except InfertuneError as exc:
        print(f"infertune: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infertune: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    # A command may end in a verdict (compare: 1 = regression) rather than plain success.
    return getattr(args, "exit_code", 0)


def one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


def progress_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- rendering


def make_console() -> Console:
    """stdout console; when piped, wide enough that tables are not cut to 80 columns."""
    from rich.console import Console
    return Console(width=None if sys.stdout.isatty() else 200)


def human(n: float, unit: str = "") -> str:
    """12_345_678 -> '12.35 M'; keeps three significant decimals for readability."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n:g} {unit}".rstrip()


def human_bytes(n: float) -> str:
    for factor, prefix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{int(n)} B"


def shape_text(shape: Any) -> str:
    return "×".join(str(d) for d in shape) if isinstance(shape, (list, tuple)) else str(shape)


def num(value: Any, fmt: str = "{:.1f}") -> str:
    return "–" if value is None else fmt.format(value)

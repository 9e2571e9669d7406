"""The `infertune` command line. Each subcommand parses flags, calls one api function and
renders its result; no logic lives here. With --json only the JSON goes to stdout."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from . import __version__
from .errors import InfertuneError


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


def _model_options() -> argparse.ArgumentParser:
    """Flags shared by every command that loads a model."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("model loading")
    g.add_argument("--input-size", type=parse_size, metavar="HxW",
                   help="input height x width (default: the model's own)")
    g.add_argument("--num-classes", type=int, help="classes of the head (zoo models, checkpoints)")
    g.add_argument("--arch", help="architecture of a state-dict checkpoint (zoo name or NET.cfg)")
    g.add_argument("--trust-code", action="store_true",
                   help="allow MODEL to be package.module:factory (imports and runs that code)")
    g.add_argument("--allow-partial", action="store_true",
                   help="accept Darknet weights covering only the first layers (.conv.N files)")
    g.add_argument("--bn-eps", choices=("cpu", "gpu"), default="cpu",
                   help="Darknet batch-norm epsilon: cpu = x/(sqrt(var)+1e-6) as CPU Darknet "
                        "(default); gpu = x/sqrt(var+1e-5) as GPU Darknet and AlexeyAB")
    g.add_argument("--seed", type=int, default=0, help="seed for random weights (default 0)")
    return p


def _json_flag() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")
    return p


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    return {"num_classes": args.num_classes, "arch": args.arch, "trust_code": args.trust_code,
            "allow_partial": args.allow_partial, "bn_eps": args.bn_eps, "seed": args.seed}


MODEL_HELP = ("zoo name (see `infertune zoo`), NET.cfg[:NET.weights], model.onnx, TorchScript or "
              "checkpoint .pt, or package.module:factory (with --trust-code)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infertune", description="Make a trained vision model fast within an accuracy budget.")
    parser.add_argument("--version", action="version", version=f"infertune {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = [_json_flag()]
    model = [_model_options(), *common]

    p = sub.add_parser("zoo", parents=common, help="list the built-in architectures")
    p.add_argument("names", nargs="*", help="only these entries")
    p.set_defaults(run=cmd_zoo)

    p = sub.add_parser("profile", parents=model, help="params, MACs, bytes per layer and in total")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--top", type=int, default=0, help="show only the N layers with the most MACs")
    p.set_defaults(run=cmd_profile)

    p = sub.add_parser("export", parents=model, help="export a model (ONNX)")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--format", default="onnx", choices=("onnx",), help="output format")
    p.add_argument("--out", required=True, help="output file")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    p.set_defaults(run=cmd_export)
    return parser


def cmd_zoo(args: argparse.Namespace) -> Any:
    from . import api

    rows = api.zoo_list(args.names or None)
    if not args.json:
        from .render import zoo_table

        zoo_table(rows)
    return rows


def cmd_profile(args: argparse.Namespace) -> Any:
    from . import api

    result = api.profile(args.model, input_size=args.input_size, **load_options(args))
    if not args.json:
        from .render import profile_table

        profile_table(result, top=args.top)
    return result


def cmd_export(args: argparse.Namespace) -> Any:
    from . import api

    result = api.export(args.model, args.format, args.out, opset=args.opset,
                        input_size=args.input_size, **load_options(args))
    if not args.json:
        from .render import export_summary

        export_summary(result)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], Any] = args.run
    try:
        result = run(args)
    except InfertuneError as exc:
        print(f"infertune: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infertune: interrupted", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        json.dump(result, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    return 0


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

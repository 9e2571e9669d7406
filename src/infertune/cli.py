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

    p = sub.add_parser("zoo", parents=common, help="list the built-in architectures",
                       epilog="`infertune zoo train NAME` trains a reference model "
                              "(see `infertune zoo train --help`)")
    p.add_argument("names", nargs="*", help="only these entries")
    p.set_defaults(run=cmd_zoo)
    _add_zoo_train(sub, common)
    _add_eval(sub, model)
    _add_apply(sub, model)
    _add_list(sub, common)
    _add_sensitivity(sub, model)
    _add_report(sub, common)
    _add_compare(sub, common)
    from .cli_optimize import add_optimize
    from .cli_predict import add_predict

    add_optimize(sub, model, common)
    add_predict(sub, model, load_options)

    p = sub.add_parser("profile", parents=model, help="params, MACs, bytes per layer and in total")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--top", type=int, default=0, help="show only the N layers with the most MACs")
    p.add_argument("--limits", action="store_true",
                   help="measure the machine's FP32/INT8 peaks and memory bandwidth (cached) "
                        "and place the model against them")
    p.add_argument("--refresh-limits", action="store_true", help="measure the limits again")
    p.add_argument("--layer-time", metavar="RUNTIME",
                   help="build the model for RUNTIME and measure the time of each layer")
    p.add_argument("--threads", type=positive_int, help="threads (default: physical cores)")
    p.set_defaults(run=cmd_profile)

    p = sub.add_parser("export", parents=model, help="export a model (ONNX), or a run's pick "
                                                     "as a Triton model repository")
    p.add_argument("model", help=MODEL_HELP + ", or an optimize RUN_DIR (with --format triton)")
    p.add_argument("--format", default="onnx", choices=("onnx", "triton"),
                   help="onnx (a model) or triton (a run's pick → model repository)")
    p.add_argument("--out", required=True, help="output file (triton: repository folder)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17, default 17)")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("bench", parents=model,
                       help="time the model on each runtime, side by side (interleaved rounds)")
    _bench_flags(p)
    p.set_defaults(run=cmd_bench)
    return parser


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


def _bench_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--runtime", default="all", metavar="LIST",
                   help="comma-separated runtimes (torch, torchscript, compile, onnxruntime, "
                        "openvino, tensorrt) or 'all' (default); the first is the baseline")
    p.add_argument("--batch", default="1", metavar="SIZES",
                   help="batch sizes, e.g. 1,8,32, or 'auto' (latency at 1 and a throughput "
                        "search for the best batch); default 1")
    p.add_argument("--threads", type=positive_int,
                   help="intra-op threads for every runtime (default: physical cores)")
    p.add_argument("--rounds", type=positive_int, default=3,
                   help="interleaved rounds A B C A B C ... (default 3)")
    p.add_argument("--min-runs", type=positive_int, default=50,
                   help="at least this many timed calls per measurement (default 50)")
    p.add_argument("--min-seconds", type=non_negative_float, default=5.0,
                   help="and at least this many seconds of timed calls (default 5)")
    p.add_argument("--e2e", metavar="IMAGE_OR_FOLDER",
                   help="also time image file -> class label (decode + preprocess + model + "
                        "argmax) at batch 1, next to the model-only time")


def cmd_bench(args: argparse.Namespace) -> Any:
    from . import api

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = api.bench(args.model, runtimes=args.runtime, batches=args.batch,
                       threads=args.threads, rounds=args.rounds, min_runs=args.min_runs,
                       min_seconds=args.min_seconds, e2e=args.e2e, input_size=args.input_size,
                       progress=progress, **load_options(args))
    if not args.json:
        from .render import bench_table

        bench_table(result)
    return result


# `infertune zoo train NAME` is parsed by a subcommand named "zoo-train" (not listed in the
# help): `zoo` itself takes optional positional names, which argparse cannot mix with nested
# subcommands, so the two words are joined before parsing. `infertune zoo NAME...` still lists.
ZOO_TRAIN = "zoo-train"


def zoo_train_argv(argv: list[str]) -> list[str]:
    """["zoo", "train", ...] -> ["zoo-train", ...]; anything else unchanged."""
    return [ZOO_TRAIN, *argv[2:]] if argv[:2] == ["zoo", "train"] else argv


def _add_zoo_train(sub, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(ZOO_TRAIN, parents=common, prog="infertune zoo train",
                       description="Train a reference model deterministically on the CPU: "
                                   "ref-small or ref-large on sample:train (about a minute), "
                                   "ref-clutter on clutter:train (tens of minutes).")
    p.add_argument("name", help="ref-small, ref-large or ref-clutter")
    p.add_argument("--out", help="output folder for NAME.cfg, NAME.weights, NAME.json (default: "
                                 "~/.local/share/infertune/zoo; the shipped weights are replaced "
                                 "only if --out points at them)")
    p.add_argument("--epochs", type=int, help="instead of the recipe's epochs")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, shuffling and "
                                                       "augmentation (default 0)")
    p.set_defaults(run=cmd_zoo_train)


def _add_eval(sub, model: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("eval", parents=model, help="accuracy (with labels) and fidelity to a "
                                                   "reference model, with 95%% intervals",
                       description="--seed also seeds the --limit sample choice.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help="'sample' (or sample:val, the part the "
                   "reference models never trained on), an image folder, or an .npz (x, y)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line (index = line)")
    p.add_argument("--preprocess", help="preset (darknet, imagenet, efficientnet_lite, none) or "
                                        "'preset,key=value,...' (default: the model's)")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate N samples (stratified)")
    p.add_argument("--skip-bad", action="store_true", help="leave bad samples out, listed")
    p.add_argument("--batch-size", type=int, default=64, help="inference batch (default 64)")
    p.add_argument("--reference", metavar="MODEL",
                   help="the original model: adds fidelity and the paired top-1 comparison")
    p.add_argument("--threads", type=int, help="intra-op threads (default: all cores)")
    p.add_argument("--runtime", help="run the model on this runtime (see `infertune bench`) "
                                     "instead of in-process torch / ONNX Runtime")
    p.set_defaults(run=cmd_eval)


def cmd_zoo_train(args: argparse.Namespace) -> Any:
    from . import api

    result = api.zoo_train(args.name, out=args.out, epochs=args.epochs, seed=args.seed,
                           progress=True)  # on stderr: stdout stays pure JSON
    if not args.json:
        from .render_eval import train_summary

        train_summary(result)
    return result


def cmd_eval(args: argparse.Namespace) -> Any:
    from . import api

    result = api.evaluate(args.model, args.data, reference=args.reference,
                          labels_file=args.labels, preprocess=args.preprocess, limit=args.limit,
                          skip_bad=args.skip_bad, batch_size=args.batch_size,
                          threads=args.threads, runtime=args.runtime,
                          input_size=args.input_size, **load_options(args))
    if not args.json:
        from .render import eval_table

        eval_table(result)
    return result


def cmd_zoo(args: argparse.Namespace) -> Any:
    from . import api

    rows = api.zoo_list(args.names or None)
    if not args.json:
        from .render import zoo_table

        zoo_table(rows)
    return rows


def cmd_profile(args: argparse.Namespace) -> Any:
    from . import api

    result = api.profile(args.model, input_size=args.input_size,
                         limits=args.limits or args.refresh_limits, layer_time=args.layer_time,
                         threads=args.threads, refresh_limits=args.refresh_limits,
                         **load_options(args))
    if not args.json:
        from .render import layer_time_table, limits_summary, profile_table

        profile_table(result, top=args.top)
        if "limits" in result:
            limits_summary(result["limits"])
        if "layer_time" in result:
            layer_time_table(result["layer_time"], top=args.top)
    return result


def cmd_export(args: argparse.Namespace) -> Any:
    from . import api

    if args.format == "triton":
        result = api.export_triton(args.model, args.out)
        if not args.json:
            print(f"Triton model repository: {result['repository']} (model {result['model']}, "
                  f"{result['backend']})")
        return result
    result = api.export(args.model, args.format, args.out, opset=args.opset,
                        input_size=args.input_size, **load_options(args))
    if not args.json:
        from .render import export_summary

        export_summary(result)
    return result


def _add_apply(sub, model: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", parents=model, help="apply passes in order and write the "
                                                    "artifact for one runtime",
                       description="Passes run in the order given; the artifact is checked "
                                   "against the input model before it is written.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--pass", dest="passes", action="append", required=True,
                   metavar="NAME[:key=value,...]", help="a pass and its options (repeatable; "
                   "see `infertune list passes`)")
    p.add_argument("--runtime", help="runtime whose artifact to write (default: onnxruntime for "
                                     "an ONNX result, else torchscript)")
    p.add_argument("--data", help="data for passes that need it (calibration) and for the "
                                  "parity check: 'sample', an image folder or an .npz")
    p.add_argument("--calib-size", type=positive_int, default=128,
                   help="calibration samples taken from --data (default 128)")
    p.add_argument("--train-size", type=positive_int, default=2048,
                   help="samples for passes that train (finetune, distill, qat): from "
                        "sample:train with --data sample, else from --data (default 2048)")
    p.add_argument("--threads", type=positive_int, help="threads for building and checking")
    p.add_argument("--out", required=True, help="output file (IR: FILE.xml and FILE.bin)")
    p.set_defaults(run=cmd_apply)


def cmd_apply(args: argparse.Namespace) -> Any:
    from . import api

    result = api.apply(args.model, args.passes, out=args.out, runtime=args.runtime,
                       data=args.data, calib_size=args.calib_size, threads=args.threads,
                       input_size=args.input_size, train_size=args.train_size,
                       **load_options(args))
    if not args.json:
        from .render_apply import apply_summary

        apply_summary(result)
    return result


def _add_list(sub, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", parents=common, help="list passes (with options), runtimes "
                                                   "(with availability) or model formats")
    p.add_argument("what", choices=("passes", "runtimes", "formats"))
    p.set_defaults(run=cmd_list)


def cmd_list(args: argparse.Namespace) -> Any:
    from . import api

    rows = api.list_items(args.what)
    if not args.json:
        from .render_apply import list_table

        list_table(args.what, rows)
    return rows


def _add_sensitivity(sub, model: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sensitivity", parents=model,
                       help="rank layers by the output error each causes quantized alone (INT8)",
                       description="Each Conv/Gemm/MatMul is quantized alone (ONNX Runtime, "
                                   "QDQ, calibrated once) and the output SQNR and top-1 "
                                   "agreement with the float model are measured on samples "
                                   "other than the calibration ones; lowest SQNR first.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--data", required=True, help="'sample' (or sample:val), an image folder, "
                                                 "or an .npz (x[, y])")
    p.add_argument("--limit", type=positive_int, metavar="N",
                   help="use N samples: the first up to 128 calibrate, the next up to 64 "
                        "measure (default 192)")
    p.add_argument("--method", choices=("minmax", "percentile", "entropy"), default="minmax",
                   help="activation calibration (default minmax)")
    p.add_argument("--per-tensor", action="store_true", help="per-tensor weight scales "
                                                             "(default per channel)")
    p.add_argument("--preprocess", help="preset or 'preset,key=value,...' (default: the model's)")
    p.add_argument("--threads", type=positive_int, help="intra-op threads (default: all cores)")
    p.add_argument("--out", metavar="FILE", help="also write the ranking as JSON (atomically)")
    p.set_defaults(run=cmd_sensitivity)


def cmd_sensitivity(args: argparse.Namespace) -> Any:
    from . import api

    result = api.sensitivity(args.model, args.data, limit=args.limit, out=args.out,
                             method=args.method, per_channel=not args.per_tensor,
                             preprocess=args.preprocess, threads=args.threads,
                             input_size=args.input_size, **load_options(args))
    if not args.json:
        from .render import sensitivity_table

        sensitivity_table(result)
    return result


def _add_report(sub, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", parents=common, help="write report.md / report.html of an "
                                                     "optimize run from its report.json")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory (or its report.json)")
    p.add_argument("--format", choices=("md", "html", "both"), default="both",
                   help="md: report.md + report_files/*.svg; html: one self-contained "
                        "report.html; both (default)")
    p.set_defaults(run=cmd_report)


def cmd_report(args: argparse.Namespace) -> Any:
    from . import api

    formats = ("md", "html") if args.format == "both" else (args.format,)
    result = api.report(args.run_dir, formats)
    if not args.json:
        print("\n".join(result["files"]))
    return result


COMPARE_EPILOG = """\
exit status:
  0  no regression beyond the thresholds
  1  regression: the new p50 latency is more than --fail-on-regression slower AND the 95%
     bootstrap interval of the new/old ratio lies above 1.0 (same CPU only), or the
     accuracy (top-1, or top-1 agreement without labels) fell by more than
     --max-accuracy-drop points
  2  user error (missing file, not a report or model card, bad flag)"""


def _add_compare(sub, common: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compare", parents=common, epilog=COMPARE_EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       help="compare two runs or model cards; fail on a regression (CI)",
                       description="Compares the pick (or baseline) of run OLD with that of "
                                   "run NEW: latency with a bootstrap interval, accuracy "
                                   "with intervals, machine and library differences.")
    p.add_argument("old", metavar="OLD", help="RUN_DIR, report.json or best/model_card.json")
    p.add_argument("new", metavar="NEW", help="RUN_DIR, report.json or best/model_card.json")
    p.add_argument("--fail-on-regression", default="5%", metavar="PCT",
                   help="latency slowdown that fails, e.g. 5%% (default 5%%)")
    p.add_argument("--max-accuracy-drop", type=non_negative_float, default=0.5,
                   metavar="POINTS", help="accuracy drop in points that fails (default 0.5)")
    p.set_defaults(run=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> Any:
    from . import api

    result = api.compare(args.old, args.new, fail_on_regression=args.fail_on_regression,
                         max_accuracy_drop=args.max_accuracy_drop)
    if not args.json:
        from .report.compare_text import render

        sys.stdout.write(render(result))
    args.exit_code = result["exit_code"]
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit code (0 ok, 2 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(zoo_train_argv(sys.argv[1:] if argv is None else list(argv)))
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
    # A command may end in a verdict (compare: 1 = regression) rather than plain success.
    return getattr(args, "exit_code", 0)


def _one_line(text: str) -> str:
    return " ".join(text.split()) if "\n" in text else text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

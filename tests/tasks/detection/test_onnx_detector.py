"""ONNX detectors in the two common layouts, built here: (a) a two-head Darknet YOLO exported
to ONNX by infertune's own exporter and loaded back with its anchors as options decodes to
Darknet's boxes; (b) a torch module whose output is a known Ultralytics-style (B, 4 + C, N)
tensor decodes, after class-wise NMS, to hand-computed boxes; the layout options parsed and
matched to output shapes (pure); `predict --json` on both; bad options as one-line exit-2
errors."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from detector_cfgs import SMALL_ANCHORS, TINY_ANCHORS, two_head_detector
from infertune.cli import main
from infertune.errors import ConfigError
from infertune.tasks.detection.heads import (ULTRALYTICS_GREY, DetectionSpec, UltralyticsHead,
                                             YoloHead)
from infertune.tasks.detection.letterbox import letterbox
from infertune.tasks.detection.onnx_layout import (anchor_points, onnx_detection_spec,
                                                   parse_anchors, parse_detector)

HEAD_SCALE = 10.0  # head logits ×10: scores far from the .25 threshold (as the bench test)
# torch and ONNX Runtime agree to ~1e-6 on the maps (the exporter's own check is 1e-3
# relative); decoding in float64 turns that into boxes within 1e-3 px and scores within 1e-5.
BOX_ATOL_PX, SCORE_ATOL = 1e-3, 1e-5

# ---------------------------------------------------------------------- the Ultralytics module
# (cx, cy, w, h) in input pixels and the two class scores; every other box scores 0.
U_BOXES = {
    "A": ((20, 30, 10, 8), (0.9, 0.05)),
    "G": ((23, 30, 10, 8), (0.85, 0.0)),  # IoU .54 with A: kept at Ultralytics' .7
    "B": ((21, 30, 10, 8), (0.8, 0.0)),   # IoU .82 with A, same class: suppressed
    "F": ((26, 30, 10, 8), (0.75, 0.0)),
    "C": ((21, 31, 10, 8), (0.0, 0.7)),   # overlaps A but is class 1: class-wise NMS keeps it
    "D": ((45, 40, 12, 12), (0.1, 0.2)),  # below .25
    "E": ((45, 42, 12, 12), (0.6, 0.5)),  # two classes above .25: both kept (multi-label)
}
# A 128×64 image letterboxed into 64×64: scale 1/2, 16 rows of padding above, so a box in
# input pixels maps to x·2 and y·2 − 32 in the image.
EXPECTED = [("A", 0, 0.9, [30, 20, 50, 36]), ("G", 0, 0.85, [36, 20, 56, 36]),
            ("F", 0, 0.75, [42, 20, 62, 36]), ("C", 1, 0.7, [32, 22, 52, 38]),
            ("E", 0, 0.6, [78, 40, 102, 64]), ("E", 1, 0.5, [78, 40, 102, 64])]
U_INPUT = 64
U_N = 84  # anchor points of strides 8, 16, 32 at 64×64: 64 + 16 + 4


def ultralytics_tensor() -> np.ndarray:
    t = np.zeros((1, 6, U_N), np.float32)
    for i, (box, scores) in enumerate(U_BOXES.values()):
        t[0, :4, 10 + 7 * i] = box
        t[0, 4:, 10 + 7 * i] = scores
    return t


@pytest.fixture(scope="module")
def ultralytics_onnx(tmp_path_factory):
    import torch

    class Decoded(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("known", torch.from_numpy(ultralytics_tensor()))
            self.conv = torch.nn.Conv2d(3, 1, 1)

        def forward(self, x):  # the known tensor, tied to the input so the graph uses it
            tie = self.conv(x).mean(dim=(1, 2, 3)).reshape(-1, 1, 1) * 0.0
            return self.known.expand(x.shape[0], -1, -1) + tie

    path = tmp_path_factory.mktemp("ultra") / "yolo-decoded.onnx"
    with warnings.catch_warnings():  # the legacy exporter warns; it is what export/ uses too
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(Decoded().eval(), (torch.zeros(1, 3, U_INPUT, U_INPUT),), str(path),
                          dynamo=False, opset_version=17, input_names=["images"],
                          output_names=["output0"], dynamic_axes={"images": {0: "batch"},
                                                                  "output0": {0: "batch"}})
    return path


@pytest.fixture(scope="module")
def darknet_onnx(tmp_path_factory):
    import torch

    from infertune.export.onnx import export_onnx
    from infertune.load.darknet import load_darknet, write_weights

    root = tmp_path_factory.mktemp("darknet")
    cfg = root / "det.cfg"
    cfg.write_text(two_head_detector())
    net = load_darknet(cfg).obj
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for conv in [m for m in net.modules()
                     if isinstance(m, torch.nn.Conv2d) and m.out_channels == 21]:
            conv.weight.mul_(HEAD_SCALE)
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * 3)
    write_weights(net, root / "det.weights")
    source = f"{cfg}:{root / 'det.weights'}"
    from infertune.load import load_model

    export_onnx(load_model(source), root / "det.onnx")
    return source, root / "det.onnx"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    paths = []
    for i, (h, w) in enumerate([(40, 70), (64, 64), (90, 50)]):
        paths.append(root / f"{i}.png")
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    wide = root / "wide.png"
    Image.fromarray(np.full((64, 128, 3), 90, np.uint8)).save(wide)
    return paths, wide


ONNX_OPTS = ["--anchors", SMALL_ANCHORS.replace(" ", ""), "--num-classes", "2"]


def _detections(source, paths, **load):
    """Decoded detections (unrounded) of each image, as predict computes them."""
    from infertune.commands.predict import _detect
    from infertune.load import load_model
    from infertune.measure.inprocess import inprocess_runner

    handle = load_model(str(source), **load)
    runner = inprocess_runner(handle, 1, None)
    try:
        _, found = _detect(handle, paths, runner, None, None, None)
    finally:
        runner.close()
    return handle, found


# ---------------------------------------------------------------------- (a) raw maps: parity


def test_darknet_onnx_with_its_anchors_gives_darknets_boxes(darknet_onnx, images):
    source, onnx_path = darknet_onnx
    paths, _ = images
    darknet, want = _detections(source, paths)
    onnx, got = _detections(onnx_path, paths, anchors=SMALL_ANCHORS, num_classes=2)
    spec, ref = onnx.meta["detection"], darknet.meta["detection"]
    # the same decoding parameters; `layer` is the output's index for an ONNX file
    assert [h.output for h in spec.heads] == [h.output for h in ref.heads]
    assert [(h.grid, h.anchors, h.classes) for h in spec.heads] == \
        [(h.grid, h.anchors, h.classes) for h in ref.heads]
    assert spec.pad_value == ref.pad_value == 0.5 and spec.nms_threshold == 0.45
    assert sum(len(d.scores) for d in want) > 3  # boxes to compare on every image
    for a, b in zip(want, got):
        assert np.array_equal(a.classes, b.classes)
        np.testing.assert_allclose(b.boxes, a.boxes, atol=BOX_ATOL_PX, rtol=0)
        np.testing.assert_allclose(b.scores, a.scores, atol=SCORE_ATOL, rtol=0)


def test_symbolic_map_sizes_come_from_a_run_at_the_input_size(darknet_onnx, images, tmp_path):
    import torch

    from infertune.load import load_model

    source, _ = darknet_onnx
    path = tmp_path / "dynamic.onnx"
    axes = {"input": {0: "b", 2: "h", 3: "w"}, "yolo_8": {0: "b", 2: "h8", 3: "w8"},
            "yolo_15": {0: "b", 2: "h16", 3: "w16"}}
    with warnings.catch_warnings():  # the legacy exporter's notes on Darknet's padding Slice
        warnings.simplefilter("ignore")
        torch.onnx.export(load_model(source).obj.eval(), (torch.zeros(1, 3, 64, 64),),
                          str(path), dynamo=False, opset_version=17, input_names=["input"],
                          output_names=["yolo_8", "yolo_15"], dynamic_axes=axes)
    paths, _ = images
    _, want = _detections(source, paths, input_size=(96, 128))
    onnx, got = _detections(path, paths, input_size=(96, 128), anchors=SMALL_ANCHORS,
                            num_classes=2)
    assert [h.grid for h in onnx.meta["detection"].heads] == [(12, 16), (24, 32)]
    assert sum(len(d.scores) for d in want) > 3
    for a, b in zip(want, got):
        assert np.array_equal(a.classes, b.classes)
        np.testing.assert_allclose(b.boxes, a.boxes, atol=BOX_ATOL_PX, rtol=0)


# ---------------------------------------------------------------------- (b) the decoded tensor


def test_ultralytics_tensor_decodes_to_the_hand_computed_boxes(ultralytics_onnx, images):
    _, wide = images
    handle, (dets,) = _detections(ultralytics_onnx, [wide])  # recognised from its shape
    spec = handle.meta["detection"]
    assert spec.heads == (UltralyticsHead(output="output0", classes=2, boxes=U_N),)
    assert spec.nms_threshold == 0.7 and spec.pad_value == pytest.approx(114 / 255)
    assert dets.image_hw == (64, 128)
    assert [int(c) for c in dets.classes] == [c for _, c, _, _ in EXPECTED]
    np.testing.assert_allclose(dets.scores, [s for _, _, s, _ in EXPECTED], atol=1e-7)
    np.testing.assert_allclose(dets.boxes, [b for *_, b in EXPECTED], atol=1e-4)
    forced, (again,) = _detections(ultralytics_onnx, [wide], detector="ultralytics",
                                   num_classes=2)
    assert forced.meta["detection"] == spec
    np.testing.assert_array_equal(again.boxes, dets.boxes)


def test_the_letterbox_pads_with_the_specs_grey():
    pixels = np.full((3, 10, 20), 255, np.uint8)
    x = letterbox(pixels, (20, 20), ULTRALYTICS_GREY)
    assert x[0, 0, 0] == pytest.approx(114 / 255) and x[0, 10, 10] == 1.0
    assert letterbox(pixels, (20, 20))[0, 0, 0] == 0.5  # Darknet's by default


# ---------------------------------------------------------------------- the layout, pure


def test_a_flat_anchor_list_goes_largest_map_first_as_darknets_masks():
    pairs = parse_anchors(TINY_ANCHORS)
    outputs = [("yolo_16", (255, 13, 13)), ("yolo_23", (255, 26, 26))]  # yolov3-tiny
    spec = onnx_detection_spec(outputs, (416, 416), detector=None, anchors=TINY_ANCHORS,
                               classes=80)
    assert [h.anchors for h in spec.heads] == [pairs[0][3:], pairs[0][:3]]  # mask 3,4,5 / 0,1,2
    assert all(isinstance(h, YoloHead) and h.classes == 80 for h in spec.heads)
    # yolov4-tiny's masks (3,4,5 and 1,2,3) need one group per output
    v4 = onnx_detection_spec(outputs, (416, 416), anchors="81,82,135,169,344,319;"
                             "23,27,37,58,81,82", detector="yolo:scale_x_y=1.05,"
                             "nms_kind=greedynms", classes=80)
    assert v4.heads[1].anchors == ((23, 27), (37, 58), (81, 82))
    assert v4.heads[0].scale_x_y == 1.05 and v4.heads[1].nms_kind == "greedynms"
    region = onnx_detection_spec([("out", (425, 13, 13))], (416, 416), classes=80,
                                 detector="region:softmax=1", anchors="0.57,0.68," * 4 + "1,2")
    assert region.heads[0].softmax and len(region.heads[0].anchors) == 5


def test_the_decoded_layout_is_recognised_only_when_unambiguous():
    assert anchor_points((640, 640)) == {8400, 8400 + 100}
    found = onnx_detection_spec([("output0", (84, 8400))], (640, 640), detector=None,
                                anchors=None, classes=None)
    assert found.heads[0].classes == 80
    # a (B, 6, 5) tensor could be anything: only --detector ultralytics says it is boxes
    assert onnx_detection_spec([("y", (6, 5))], (64, 64), detector=None, anchors=None,
                               classes=None) is None
    assert onnx_detection_spec([("y", (6, 5))], (64, 64), detector="ultralytics:pad=0.5",
                               anchors=None, classes=None).pad_value == 0.5
    assert onnx_detection_spec([("logits", (1000,))], (224, 224), detector=None,
                               anchors=None, classes=None) is None
    # letterbox=0 on either layout: the whole image resized (an AlexeyAB export)
    assert onnx_detection_spec([("y", (6, 5))], (64, 64), detector="ultralytics:letterbox=0",
                               anchors=None, classes=None).letterbox is False
    maps = onnx_detection_spec([("a", (255, 13, 13)), ("b", (255, 26, 26))], (416, 416),
                               detector="yolo:letterbox=0", anchors=TINY_ANCHORS, classes=80)
    assert maps.letterbox is False
    assert onnx_detection_spec([("a", (255, 13, 13)), ("b", (255, 26, 26))], (416, 416),
                               detector=None, anchors=TINY_ANCHORS, classes=80).letterbox


def test_every_layout_survives_to_dict_and_from_dict():
    ultra = onnx_detection_spec([("output0", (84, 8400))], (640, 640), detector=None,
                                anchors=None, classes=None)
    maps = onnx_detection_spec([("a", (255, 13, 13)), ("b", (255, 26, 26))], (416, 416),
                               detector="yolo:new_coords=1,pad=0.25", anchors=TINY_ANCHORS,
                               classes=80)
    for spec in (ultra, maps):
        assert DetectionSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    old = {k: v for k, v in maps.to_dict().items() if k != "pad_value"}  # an older run
    assert DetectionSpec.from_dict(old).pad_value == 0.5


@pytest.mark.parametrize("kwargs,message", [
    (dict(anchors="10,14,23"), "--anchors needs pairs of numbers (w,h), got 3 values"),
    (dict(anchors="10,14,x,27"), "--anchors must be numbers"),
    (dict(anchors="10,14,23,27", classes=2),
     "--anchors gives 2 anchors but the outputs' channels hold 3 + 3 = 6 at 2 classes"),
    (dict(anchors="1,2;3,4", classes=2), "output 'a' has 21 channels, but its 1 anchors need "
                                         "1·(5 + 2 classes) = 7"),
    (dict(anchors="1,2,3,4,5,6;1,2,3,4,5,6;1,2", classes=2),
     "--anchors has 3 groups (';') but the model has 2 outputs"),
    (dict(anchors=SMALL_ANCHORS, classes=3), "output 'a' has 21 channels: not anchors·(5 + 3"),
    (dict(anchors=SMALL_ANCHORS), "--detector yolo needs --num-classes"),
    (dict(detector="yolo", classes=2), "--detector yolo needs --anchors"),
    (dict(detector="ultralytics"), "--detector ultralytics needs one (B, 4 + classes, N)"),
    (dict(detector="yolov8"), "--detector must be one of yolo, region, ultralytics"),
    (dict(detector="yolo:scale=2", anchors=SMALL_ANCHORS, classes=2), "'scale=2' is not"),
    (dict(detector="region:softmax=maybe", anchors=SMALL_ANCHORS, classes=2),
     "bad softmax='maybe'"),
])
def test_bad_layout_options_are_one_line_config_errors(kwargs, message):
    outputs = [("a", (21, 8, 8)), ("b", (21, 16, 16))]
    with pytest.raises(ConfigError) as err:
        onnx_detection_spec(outputs, (64, 64), **{"detector": None, "anchors": None,
                                                  "classes": None, **kwargs})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_parse_detector_types_its_keys():
    layout = parse_detector("yolo:scale_x_y=1.1, new_coords=true,pad=0.4")
    assert layout.kind == "yolo" and dict(layout.options) == {
        "scale_x_y": 1.1, "new_coords": True, "pad": 0.4}


# ---------------------------------------------------------------------- (c), (d) the CLI


def _predict(capsys, *argv):
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_json_on_raw_maps_equals_darknets(darknet_onnx, images, capsys):
    source, onnx_path = darknet_onnx
    paths, _ = images
    code, out, err = _predict(capsys, onnx_path, *paths, *ONNX_OPTS, "--json")
    assert code == 0, err
    got = json.loads(out)
    code, out, _ = _predict(capsys, source, *paths, "--json")
    want = json.loads(out)
    assert got["task"] == want["task"] == "detection" and got["model"] == "det.onnx"
    for a, b in zip(want["images"], got["images"]):
        assert a["size"] == b["size"] and len(a["detections"]) == len(b["detections"])
        for da, db in zip(a["detections"], b["detections"]):
            assert da["class_id"] == db["class_id"]
            # predict rounds boxes to .01 px and scores to 1e-6: one step either way
            assert np.allclose(da["box"], db["box"], atol=0.011)
            assert abs(da["score"] - db["score"]) <= 2e-6


def test_predict_json_on_the_decoded_tensor(ultralytics_onnx, images, capsys, tmp_path):
    _, wide = images
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    code, out, err = _predict(capsys, ultralytics_onnx, wide, "--labels", names, "--json")
    assert code == 0, err
    (row,) = json.loads(out)["images"]
    assert row["size"] == [64, 128]
    assert [(d["class"], d["score"], d["box"]) for d in row["detections"]] == \
        [(["cat", "dog"][c], s, [float(v) for v in b]) for _, c, s, b in EXPECTED]


@pytest.mark.parametrize("extra,message", [
    (["--anchors", "6,8,12,10", "--num-classes", "2"],
     "--anchors gives 2 anchors but the outputs' channels hold 3 + 3 = 6 at 2 classes"),
    (["--anchors", "6,8,12", "--num-classes", "2"], "--anchors needs pairs of numbers"),
    (["--detector", "ultralytics", "--anchors", "6,8"], "--anchors does not apply"),
    ([], "--detector yolo --anchors W,H"),  # no layout given: predict says how to give it
])
def test_bad_detector_options_exit_2_with_one_line(darknet_onnx, images, capsys, extra,
                                                   message):
    _, onnx_path = darknet_onnx
    paths, _ = images
    code, out, err = _predict(capsys, onnx_path, paths[0], *extra)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("infertune: error: ") and message in err

"""Every [yolo]/[region] head of a Darknet detector is a network output (cfg order), named in
the ONNX export, with its decoding parameters in the handle's meta. Random weights."""
from __future__ import annotations

import pytest
import torch

import detector_cfgs as cfgs

from infertune.export.onnx import export_onnx
from infertune.load import load_model
from infertune.tasks.detection.heads import RegionHead, YoloHead


def _load(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text)
    return load_model(str(path))


def _shapes(handle, size: int):
    with torch.no_grad():
        out = handle.obj(torch.zeros(1, 3, size, size))
    return [tuple(t.shape[1:]) for t in (out if isinstance(out, tuple) else (out,))]


@pytest.mark.parametrize("name,text,size,expected", [
    ("yolov3-tiny.cfg", cfgs.yolov3_tiny(), 416, [(255, 13, 13), (255, 26, 26)]),
    ("yolov4-tiny.cfg", cfgs.yolov4_tiny(), 416, [(255, 13, 13), (255, 26, 26)]),
    pytest.param("yolov3.cfg", cfgs.yolov3(96), 96, [(255, 3, 3), (255, 6, 6), (255, 12, 12)],
                 marks=pytest.mark.slow),  # 62M parameters to initialise
])
def test_every_yolo_head_is_an_output(tmp_path, name, text, size, expected):
    handle = _load(tmp_path, name, text)
    assert _shapes(handle, size) == expected
    spec = handle.meta["detection"]
    assert [h.grid for h in spec.heads] == [s[1:] for s in expected]
    assert all(isinstance(h, YoloHead) and h.classes == 80 for h in spec.heads)
    assert handle.meta["outputs"] == spec.output_names == [f"yolo_{h.layer}" for h in spec.heads]
    assert spec.input_hw == (size, size)


def test_yolov3_tiny_head_parameters(tmp_path):
    spec = _load(tmp_path, "yolov3-tiny.cfg", cfgs.yolov3_tiny()).meta["detection"]
    first, second = spec.heads
    assert (first.layer, second.layer) == (16, 23)
    assert first.anchors == ((81, 82), (135, 169), (344, 319))  # mask 3,4,5 of the 6 pairs
    assert second.anchors == ((10, 14), (23, 27), (37, 58))
    assert first.scale_x_y == 1.0 and not first.new_coords and first.nms_kind == "default"


def test_yolov4_tiny_alexeyab_keys(tmp_path):
    spec = _load(tmp_path, "yolov4-tiny.cfg", cfgs.yolov4_tiny()).meta["detection"]
    assert [h.layer for h in spec.heads] == [30, 37]
    assert spec.heads[1].anchors == ((23, 27), (37, 58), (81, 82))  # its mask=1,2,3 quirk
    assert all(h.scale_x_y == 1.05 and h.nms_kind == "greedynms" for h in spec.heads)


def test_new_coords_and_defaults(tmp_path):
    text = cfgs.net(32, [cfgs.conv(3 * 7, 1, head=True),
                         "[yolo]\nclasses=2\nnum=3\nnew_coords=1\nscale_x_y=2.0\nanchors=1,2,3,4,5,6"])
    head = _load(tmp_path, "nc.cfg", text).meta["detection"].heads[0]
    assert head.new_coords and head.scale_x_y == 2.0 and head.anchors == ((1, 2), (3, 4), (5, 6))
    text = cfgs.net(32, [cfgs.conv(2 * 7, 1, head=True), "[yolo]\nclasses=2\nnum=2"])
    head = _load(tmp_path, "bare.cfg", text).meta["detection"].heads[0]
    assert head.anchors == ((0.5, 0.5), (0.5, 0.5))  # make_yolo_layer's biases without anchors=


def test_yolov2_tiny_region_head(shared_cfg_dir):
    handle = load_model(str(shared_cfg_dir / "yolov2-tiny.cfg"))
    assert _shapes(handle, 416) == [(425, 13, 13)]
    (head,) = handle.meta["detection"].heads
    assert isinstance(head, RegionHead) and head.softmax and head.coords == 4
    assert head.classes == 80 and len(head.anchors) == 5 and head.anchors[0] == (0.57273, 0.677385)


def test_classifier_keeps_one_output(shared_cfg_dir):
    handle = load_model(str(shared_cfg_dir / "darknet.cfg"))
    assert "detection" not in handle.meta and handle.obj.output_names is None
    with torch.no_grad():
        assert handle.obj(torch.zeros(1, 3, 64, 64)).shape == (1, 1000)


@pytest.mark.slow
def test_onnx_export_names_each_head(tmp_path):
    handle = _load(tmp_path, "yolov3-tiny.cfg", cfgs.yolov3_tiny(64))
    info = export_onnx(handle, tmp_path / "y.onnx")
    assert [o["name"] for o in info["outputs"]] == ["yolo_16", "yolo_23"]
    # concrete sizes, not the exporter's symbolic names (it once named H "batch")
    assert [o["shape"] for o in info["outputs"]] == [["batch", 255, 2, 2], ["batch", 255, 4, 4]]
    assert info["max_abs_diff"] <= info["tolerance"]  # ORT checked against torch, both heads

"""The published cfgs of ../shared/darknet/cfg (read in place; skipped when absent) against
the figures of FORMAT.md §1.5 and §6, which were computed there independently."""
from __future__ import annotations

import pytest
import torch

from infertune.load.darknet import count_weight_floats, load_darknet, read_cfg
from infertune.load.darknet.build import plan_network

# FORMAT.md §1.5: float32 values in each .weights file (20-byte header not included)
FLOATS = {
    "darknet19.cfg": 20_856_776,
    "darknet19_448.cfg": 20_856_776,
    "darknet.cfg": 7_323_480,
    "extraction.cfg": 23_455_400,
    "tiny.cfg": 1_046_488,
    "yolov2-tiny.cfg": 11_237_145,
    "yolov2.cfg": 50_983_561,
}
# FORMAT.md §6: Darknet "Ops" = 2 × conv multiply-accumulates, billions at the given input
OPS = {
    ("darknet19.cfg", None): 7.29, ("darknet19.cfg", (224, 224)): 5.58,
    ("darknet19_448.cfg", None): 22.33, ("darknet.cfg", None): 0.96,
    ("extraction.cfg", None): 8.52, ("tiny.cfg", None): 0.98,
    ("yolov2-tiny.cfg", None): 5.41, ("yolov2.cfg", None): 62.94,
}  # fmt: skip


def test_every_shared_cfg_is_covered(shared_cfg_dir):
    assert {p.name for p in shared_cfg_dir.glob("*.cfg")} <= set(FLOATS)


@pytest.mark.parametrize("name", sorted(FLOATS))
def test_weight_float_count_matches_format(shared_cfg_dir, name):
    sections = read_cfg(shared_cfg_dir / name)
    assert count_weight_floats(sections) == FLOATS[name]
    assert count_weight_floats(sections, (224, 224)) == FLOATS[name]  # no connected layers


@pytest.mark.parametrize("name,size", sorted(OPS, key=str))
def test_darknet_ops_match_published(shared_cfg_dir, name, size):
    _, plans = plan_network(read_cfg(shared_cfg_dir / name), size)
    conv_macs = sum(p.macs for p in plans if p.kind == "convolutional")
    assert round(2 * conv_macs / 1e9, 2) == OPS[(name, size)]


def test_darknet19_448_shapes_macs_and_forward(shared_cfg_dir):
    handle = load_darknet(shared_cfg_dir / "darknet19_448.cfg")
    net = handle.obj
    assert net.weight_floats() == FLOATS["darknet19_448.cfg"] and handle.meta["num_classes"] == 1000
    assert handle.input_spec.shape == ("batch", 3, 448, 448)
    macs, shape = 0, net.input_size
    for section, out in zip(net.sections, net.out_shapes):  # from the shape chain, by hand
        if section.type == "convolutional":
            size, groups = section.get_int("size", 1), section.get_int("groups", 1)
            macs += out[0] * size * size * (shape[0] // groups) * out[1] * out[2]
        shape = out
    assert macs == 11_163_959_296
    assert net.out_shapes[-3:] == [(1000, 14, 14), (1000, 1, 1), 1000]
    with torch.no_grad():
        y = net(torch.rand(1, 3, 448, 448))
    assert y.shape == (1, 1000)
    torch.testing.assert_close(y.sum(dim=1), torch.ones(1))


def test_detector_shapes(shared_cfg_dir):
    _, plans = plan_network(read_cfg(shared_cfg_dir / "yolov2.cfg"))
    reorg = next(p for p in plans if p.kind == "reorg")
    assert (reorg.in_shape, reorg.out_shape) == ((64, 38, 38), (256, 19, 19))  # 608 input
    assert plans[-1].kind == "region" and plans[-1].out_shape == (425, 19, 19)
    _, plans = plan_network(read_cfg(shared_cfg_dir / "yolov2-tiny.cfg"))
    assert plans[11].kind == "maxpool" and plans[11].in_shape == plans[11].out_shape == (512, 13, 13)
    _, plans = plan_network(read_cfg(shared_cfg_dir / "yolov2.cfg"), (416, 416))
    reorg = next(p for p in plans if p.kind == "reorg")
    assert (reorg.in_shape, reorg.out_shape) == ((64, 26, 26), (256, 13, 13))


def _conv(filters: int, size: int, stride: int = 1, head: bool = False) -> str:
    bn, act = ("", "linear") if head else ("batch_normalize=1\n", "leaky")
    return f"[convolutional]\n{bn}filters={filters}\nsize={size}\nstride={stride}\npad=1\nactivation={act}"


def _yolo(mask: str, num: int) -> str:
    return f"[yolo]\nmask={mask}\nclasses=80\nnum={num}\nanchors=10,13,16,30,33,23,30,61,62,45,59,119"


def yolov3_text(size: int) -> str:
    """YOLOv3 (Darknet-53 body with residual shortcuts, 3 yolo heads, upsample + route),
    generated here from the published architecture description."""
    shortcut = "[shortcut]\nfrom=-3\nactivation=linear"
    layers = [_conv(32, 3), _conv(64, 3, 2), _conv(32, 1), _conv(64, 3), shortcut]
    for filters, repeats in ((128, 2), (256, 8), (512, 8), (1024, 4)):
        layers += [_conv(filters, 3, 2)] + [_conv(filters // 2, 1), _conv(filters, 3), shortcut] * repeats

    def head(f: int, mask: str) -> list[str]:
        return [_conv(f, 1), _conv(2 * f, 3)] * 3 + [_conv(255, 1, head=True), _yolo(mask, 9)]

    layers += head(512, "6,7,8") + ["[route]\nlayers=-4", _conv(256, 1), "[upsample]\nstride=2",
                                    "[route]\nlayers=-1,61"]
    layers += head(256, "3,4,5") + ["[route]\nlayers=-4", _conv(128, 1), "[upsample]\nstride=2",
                                    "[route]\nlayers=-1,36"]
    layers += head(128, "0,1,2")
    return "\n".join([f"[net]\nwidth={size}\nheight={size}\nchannels=3", *layers]) + "\n"


def yolov3_tiny_text() -> str:
    pool = "[maxpool]\nsize=2\nstride={}"
    layers = []
    for filters in (16, 32, 64, 128, 256):
        layers += [_conv(filters, 3), pool.format(2)]
    layers += [_conv(512, 3), pool.format(1), _conv(1024, 3), _conv(256, 1), _conv(512, 3),
               _conv(255, 1, head=True), _yolo("3,4,5", 6), "[route]\nlayers=-4", _conv(128, 1),
               "[upsample]\nstride=2", "[route]\nlayers=-1,8", _conv(256, 3), _conv(255, 1, head=True),
               _yolo("0,1,2", 6)]
    return "\n".join(["[net]\nwidth=416\nheight=416\nchannels=3", *layers]) + "\n"


@pytest.mark.parametrize("text,ops", [(yolov3_text(416), 65.86), (yolov3_text(608), 140.69),
                                      (yolov3_tiny_text(), 5.56)])
def test_yolov3_family_ops_match_published(text, ops):
    """FORMAT.md §6 (yolo.md): exercises shortcut, route, upsample and yolo shape rules."""
    from infertune.load.darknet import parse_cfg

    _, plans = plan_network(parse_cfg(text))
    conv_macs = sum(p.macs for p in plans if p.kind == "convolutional")
    assert round(2 * conv_macs / 1e9, 2) == ops

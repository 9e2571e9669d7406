"""The Darknet family built through our Darknet loader: the zoo's networks must be the
published cfgs' networks (layer types, output shapes, parameters; FORMAT.md §6)."""
from __future__ import annotations

import pytest
import torch

from infertune.load import darknet
from infertune.zoo import ZOO

SHARED_FILES = {
    "darknet19": "darknet19.cfg",
    "darknet19_448": "darknet19_448.cfg",
    "darknet_reference": "darknet.cfg",
    "tiny_darknet": "tiny.cfg",
    "extraction": "extraction.cfg",
}
# FORMAT.md §6 / §1.5: (learnable parameters, floats in the .weights file).
PUBLISHED = {
    "darknet19": (20_842_376, 20_856_776),
    "darknet19_448": (20_842_376, 20_856_776),
    "darknet_reference": (7_319_416, 7_323_480),
    "extraction": (23_437_224, 23_455_400),
    "tiny_darknet": (1_042_104, 1_046_488),
}


def zoo_net(name: str, size: tuple[int, int] | None = None):
    entry = ZOO.get(name)
    torch.manual_seed(0)
    return entry.build(entry.num_classes, size or entry.input_size)


def conv_macs(net) -> int:
    """Σ over conv layers of filters·k²·(C/groups)·out_h·out_w (cfg keys and out_shapes)."""
    total, channels = 0, net.input_size[0]
    for section, shape in zip(net.sections, net.out_shapes):
        if section.type == "convolutional":
            filters, size = section.get_int("filters", 1), section.get_int("size", 1)
            groups = section.get_int("groups", 1)
            total += filters * size * size * (channels // groups) * shape[1] * shape[2]
        channels = shape if isinstance(shape, int) else shape[0]
    return total


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_same_network_as_published_cfg(name, shared_cfg_dir):
    ours = zoo_net(name)
    text = (shared_cfg_dir / SHARED_FILES[name]).read_text()
    theirs = darknet.network_from_text(text, name=SHARED_FILES[name])
    assert ours.name == name
    assert ours.input_size == theirs.input_size
    assert [s.type for s in ours.sections] == [s.type for s in theirs.sections]
    assert [type(m) for m in ours.layers] == [type(m) for m in theirs.layers]
    assert ours.out_shapes == theirs.out_shapes
    params = sum(p.numel() for p in ours.parameters())
    assert params == sum(p.numel() for p in theirs.parameters()) == PUBLISHED[name][0]
    assert ours.weight_floats() == PUBLISHED[name][1]


def test_darknet19_448_conv_macs():
    net = zoo_net("darknet19_448")
    assert conv_macs(net) == 11_163_959_296
    assert sum(net.macs) == 11_163_959_296  # the loader's own per-layer count agrees


def test_darknet19_at_224():
    net = zoo_net("darknet19", (224, 224))
    assert net.input_size == (3, 224, 224)
    assert conv_macs(net) == pytest.approx(5.58e9 / 2, rel=1e-3)  # YOLO9000: 5.58 Bn ops


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_output_is_a_softmax(name):
    """Like the published cfgs, the zoo's Darknet classifiers end in [softmax]."""
    with torch.no_grad():
        out = zoo_net(name, (64, 64))(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2))

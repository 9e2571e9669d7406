"""The Darknet family's generated cfg text, checked without the Darknet loader.

A deliberately tiny cfg reader and shape walker (FORMAT.md §2-§3 rules, only the four layer
types these classifiers use) gives an independent check of the text: it must describe the
same layers as the published cfgs, and reproduce the published parameter and Ops figures
(FORMAT.md §6).
"""
from __future__ import annotations

import pytest

from infertune.zoo import ZOO
from infertune.zoo.darknet_family import ARCHS

# zoo name -> published cfg file it mirrors
SHARED_FILES = {
    "darknet19": "darknet19.cfg",
    "darknet19_448": "darknet19_448.cfg",
    "darknet_reference": "darknet.cfg",
    "tiny_darknet": "tiny.cfg",
    "extraction": "extraction.cfg",
}
# FORMAT.md §6: learnable parameters (floats minus BN running statistics).
PARAMS = {
    "darknet19": 20_842_376,
    "darknet19_448": 20_842_376,
    "darknet_reference": 7_319_416,
    "extraction": 23_437_224,
    "tiny_darknet": 1_042_104,
}
# FORMAT.md §6 / pjreddie.com: Darknet "Ops" (= 2 x conv multiply-adds), billions, 2 decimals.
PUBLISHED_OPS = {
    ("darknet19", 256): 7.29,
    ("darknet19", 224): 5.58,
    ("darknet19_448", 448): 22.33,
    ("darknet_reference", 256): 0.96,
    ("extraction", 224): 8.52,
    ("tiny_darknet", 224): 0.98,
}
# Defaults of the inference-relevant keys (FORMAT.md §2.4), so "absent" equals "default".
DEFAULTS = {
    "convolutional": {"filters": "1", "size": "1", "stride": "1", "pad": "0", "padding": "0",
                      "groups": "1", "activation": "logistic", "batch_normalize": "0"},
    "maxpool": {"stride": "1"},
    "avgpool": {},
    "softmax": {"groups": "1", "temperature": "1"},
}


def parse(text: str) -> list[tuple[str, dict[str, str]]]:
    """(section type, keys) in file order; whitespace stripped, first duplicate key wins."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            sections.append((line.strip("[]"), {}))
        else:
            key, _, value = line.partition("=")
            sections[-1][1].setdefault(key, value)
    return sections


def inference_keys(kind: str, keys: dict[str, str]) -> dict[str, str]:
    """The keys that change what a layer computes, defaults filled in."""
    if kind == "maxpool":
        stride = keys.get("stride", "1")
        size = keys.get("size", stride)
        return {"stride": stride, "size": size, "padding": keys.get("padding", str(int(size) - 1))}
    return {k: keys.get(k, v) for k, v in DEFAULTS[kind].items()}


def walk(sections: list[tuple[str, dict[str, str]]]) -> tuple[list[tuple[int, int, int]], int, int]:
    """Output shapes (C, H, W) per layer, learnable parameters and conv multiply-adds."""
    net = sections[0][1]
    c, h, w = int(net["channels"]), int(net["height"]), int(net["width"])
    shapes, params, macs = [], 0, 0
    for kind, keys in sections[1:]:
        k = inference_keys(kind, keys)
        if kind == "convolutional":
            n, size, stride, groups = (int(k[x]) for x in ("filters", "size", "stride", "groups"))
            pad = size // 2 if int(k["pad"]) else int(k["padding"])
            h, w = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
            weights = n * (c // groups) * size * size
            params += weights + n * (2 if int(k["batch_normalize"]) else 1)  # beta/bias (+gamma)
            macs += weights * h * w
            c = n
        elif kind == "maxpool":
            size, stride, padding = int(k["size"]), int(k["stride"]), int(k["padding"])
            h, w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
        elif kind == "avgpool":
            h = w = 1
        shapes.append((c, h, w))
    return shapes, params, macs


def arch(name: str):
    return next(a for a in ARCHS if a.name == name)


def test_registered_entries():
    darknet = {name for name, e in ZOO.items() if e.family == "darknet"}
    assert darknet == set(SHARED_FILES)
    for name in darknet:
        entry = ZOO.get(name)
        assert entry.preprocess == "darknet" and entry.num_classes == 1000
        assert entry.cfg_text is not None
    assert ZOO.get("darknet19").input_size == (256, 256)
    assert ZOO.get("darknet19_448").input_size == (448, 448)


@pytest.mark.parametrize("name", sorted(SHARED_FILES))
def test_same_layers_as_published_cfg(name, shared_cfg_dir):
    entry = ZOO.get(name)
    ours = parse(entry.cfg_text(*entry.input_size, 1000))
    theirs = parse((shared_cfg_dir / SHARED_FILES[name]).read_text())
    assert [s[0] for s in ours] == [s[0] for s in theirs]
    for key in ("height", "width", "channels"):
        assert ours[0][1][key] == theirs[0][1][key]
    for (kind, a), (_, b) in zip(ours[1:], theirs[1:]):
        assert inference_keys(kind, a) == inference_keys(kind, b), kind
    assert walk(ours) == walk(theirs)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_published_parameter_count(name):
    entry = ZOO.get(name)
    _, params, _ = walk(parse(entry.cfg_text(*entry.input_size, 1000)))
    assert params == PARAMS[name]


@pytest.mark.parametrize("name,size", sorted(PUBLISHED_OPS))
def test_published_ops(name, size):
    _, _, macs = walk(parse(ZOO.get(name).cfg_text(size, size, 1000)))
    assert round(2 * macs / 1e9, 2) == PUBLISHED_OPS[(name, size)]


def test_darknet19_448_exact_macs():
    _, _, macs = walk(parse(ZOO.get("darknet19_448").cfg_text(448, 448, 1000)))
    assert macs == 11_163_959_296


def test_cfg_text_follows_arguments():
    sections = parse(arch("darknet19").cfg_text(320, 288, 7))
    assert sections[0][1]["height"] == "320" and sections[0][1]["width"] == "288"
    shapes, _, _ = walk(sections)
    assert shapes[-1][0] == 7
    assert sections[-1][0] == "softmax"

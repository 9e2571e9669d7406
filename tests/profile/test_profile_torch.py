"""Static profile of torch modules: every golden number below is worked out by hand in the test
(float32 = 4 bytes per element, batch 1), never copied from the profiler's output."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from infertune.profile import profile_model
from infertune.types import InputSpec, ModelHandle

TOP_KEYS = ["model", "input_shape", "params", "buffers", "macs", "weight_bytes",
            "activation_bytes", "mac_bytes", "intensity", "output_shape", "layers"]
SUMMED = ["params", "buffers", "macs", "weight_bytes", "activation_bytes", "mac_bytes"]


def handle(model: nn.Module, c: int, h: int, w: int, name: str = "tiny") -> ModelHandle:
    return ModelHandle(format="torch", obj=model.eval(), name=name, source=name,
                       input_spec=InputSpec(shape=("batch", c, h, w)))


def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False),  # 0
        nn.BatchNorm2d(4),                          # 1
        nn.ReLU(),                                  # 2
        nn.MaxPool2d(2),                            # 3
        nn.Flatten(),                               # 4
        nn.Linear(4 * 4 * 4, 10),                   # 5
    )


def rows_by_name(profile: dict) -> dict[str, dict]:
    return {row["name"]: row for row in profile["layers"]}


def test_tiny_cnn_matches_hand_counts():
    prof = profile_model(handle(tiny_cnn(), 3, 8, 8))
    rows = rows_by_name(prof)
    # conv 3->4, 3x3, no bias, on 3x8x8 (pad 1): out 4x8x8 = 256 elements.
    conv_macs = 256 * 3 * 3 * 3                     # 6912
    conv_params = 4 * 3 * 3 * 3                     # 108
    conv = rows["0"]
    assert (conv["type"], conv["output_shape"]) == ("Conv2d", [4, 8, 8])
    assert (conv["macs"], conv["params"], conv["buffers"]) == (conv_macs, conv_params, 0)
    assert conv["weight_bytes"] == 108 * 4                       # 432
    assert conv["activation_bytes"] == 256 * 4                   # 1024
    assert conv["mac_bytes"] == 3 * 8 * 8 * 4 + 432 + 1024       # input 768 -> 2224
    assert conv["intensity"] == pytest.approx(6912 / 2224, abs=1e-4)
    # BatchNorm2d(4): weight+bias learnable (8), running mean+var buffers (8), 16 floats held.
    bn = rows["1"]
    assert (bn["params"], bn["buffers"], bn["macs"], bn["weight_bytes"]) == (8, 8, 0, 64)
    assert bn["mac_bytes"] == 1024 + 64 + 1024
    assert rows["2"]["mac_bytes"] == 1024 + 1024                 # ReLU: read + write
    assert rows["3"]["output_shape"] == [4, 4, 4]                # pool: 64 elements
    assert rows["3"]["mac_bytes"] == 1024 + 64 * 4
    assert rows["4"]["output_shape"] == [64]
    lin = rows["5"]                                              # Linear 64 -> 10
    assert (lin["macs"], lin["params"], lin["weight_bytes"]) == (64 * 10, 650, 2600)
    assert lin["mac_bytes"] == 64 * 4 + 2600 + 10 * 4            # 2896
    assert lin["output_shape"] == [10]

    assert list(prof) == TOP_KEYS
    assert prof["input_shape"] == [3, 8, 8] and prof["output_shape"] == [10]
    assert prof["params"] == 108 + 8 + 650                      # 766
    assert prof["buffers"] == 8
    assert prof["macs"] == 6912 + 640                            # 7552
    assert prof["weight_bytes"] == 432 + 64 + 2600               # 3096
    assert prof["activation_bytes"] == 3 * 1024 + 256 + 256 + 40  # 3624
    assert prof["mac_bytes"] == 2224 + 2112 + 2048 + 1280 + 512 + 2896  # 11072
    assert prof["intensity"] == pytest.approx(7552 / 11072, abs=1e-4)
    assert [r["name"] for r in prof["layers"]] == ["0", "1", "2", "3", "4", "5"]
    json.dumps(prof)  # JSON-ready


def test_totals_are_sums_over_layers_and_params_match_torch():
    model = tiny_cnn()
    prof = profile_model(handle(model, 3, 8, 8))
    for key in SUMMED:
        assert prof[key] == sum(row[key] for row in prof["layers"]), key
    assert prof["params"] == sum(p.numel() for p in model.parameters())


def test_grouped_depthwise_and_transposed_conv_macs():
    model = nn.Sequential(
        nn.Conv2d(8, 16, 3, padding=1, groups=4),           # grouped
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False),  # depthwise
        nn.ConvTranspose2d(16, 2, 2, stride=2),              # 5x5 -> 10x10
    )
    rows = rows_by_name(profile_model(handle(model, 8, 5, 5)))
    # grouped: 16x5x5 = 400 outputs, each reads 8/4 = 2 channels x 9 taps.
    assert rows["0"]["macs"] == 400 * 2 * 9                   # 7200
    assert rows["0"]["params"] == 16 * 2 * 9 + 16             # 304
    # depthwise: 400 outputs x 1 channel x 9 taps.
    assert rows["1"]["macs"] == 400 * 9                       # 3600
    assert rows["1"]["params"] == 16 * 9
    # transposed: each of the 16x5x5 = 400 inputs scatters to 2 channels x 2x2 taps
    # (same as 2x10x10 = 200 outputs x 16 inputs x 1 tap: stride 2 = kernel 2, no overlap).
    assert rows["2"]["macs"] == 400 * 2 * 2 * 2 == 200 * 16
    assert rows["2"]["output_shape"] == [2, 10, 10]


def test_batchnorm_buffers_are_counted_apart_from_params():
    model = nn.Sequential(nn.BatchNorm2d(6))
    prof = profile_model(handle(model, 6, 2, 2))
    # weight+bias = 12 params; running_mean+running_var = 12 buffers; the int64
    # num_batches_tracked counter is training state and is not counted anywhere.
    assert (prof["params"], prof["buffers"], prof["weight_bytes"]) == (12, 12, 24 * 4)


class Residual(nn.Module):
    """One conv and one ReLU module, each called twice: relu(x + conv(relu(conv(x))))."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x):
        y = self.conv(self.relu(self.conv(x)))
        return self.relu(x + y)


def test_shared_module_counted_per_call_for_macs_once_for_params():
    prof = profile_model(handle(Residual(), 4, 8, 8))
    assert [r["name"] for r in prof["layers"]] == ["conv", "relu"]  # first-call order
    conv, relu = prof["layers"]
    per_call = 4 * 8 * 8 * 4 * 9                                # 256 outputs x 36 = 9216
    assert (conv["calls"], conv["macs"], conv["params"]) == (2, 2 * per_call, 4 * 4 * 9)
    assert conv["activation_bytes"] == 2 * 1024
    assert conv["mac_bytes"] == 2 * (1024 + 144 * 4 + 1024)     # weights read on every call
    assert (relu["calls"], relu["activation_bytes"]) == (2, 2 * 1024)
    assert prof["params"] == 144 and prof["macs"] == 18432


class DarkConv(nn.Module):
    """Stands in for a Darknet importer layer: one row for conv + BN + activation."""

    profile_as_layer = True
    darknet_type = "convolutional"

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.LeakyReLU(0.1)

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class FunctionalConv(nn.Module):
    """A leaf that convolves with F.conv2d: its MACs must still be seen."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 4, 1, 1))

    def forward(self, x):
        return F.conv2d(x, self.weight)


class WithExtras(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = DarkConv(3, 4)
        self.scale = nn.Parameter(torch.ones(1, 4, 1, 1))  # owned by no layer
        self.head = FunctionalConv()
        self.unused = nn.Linear(2, 3)                       # never called

    def forward(self, x):
        return self.head(self.block(x) * self.scale)


def test_profile_as_layer_aggregates_and_unowned_params_still_count():
    prof = profile_model(handle(WithExtras(), 3, 6, 6))
    rows = rows_by_name(prof)
    assert list(rows) == ["block", "head", "(other)"]
    block = rows["block"]
    assert block["type"] == "convolutional"
    assert block["macs"] == 4 * 6 * 6 * 3 * 9                   # 3888
    assert (block["params"], block["buffers"]) == (4 * 3 * 9 + 8, 8)  # conv 108 + BN 8; stats 8
    assert rows["head"]["macs"] == 2 * 6 * 6 * 4                # 1x1 functional conv: 288
    # scale (4) and the uncalled Linear (2*3 + 3 = 9) are gathered in "(other)".
    assert (rows["(other)"]["params"], rows["(other)"]["macs"]) == (13, 0)
    assert prof["params"] == 116 + 8 + 13 == sum(p.numel() for p in WithExtras().parameters())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit.script is deprecated
def test_torchscript_module_gets_weighted_layers_and_same_totals():
    eager = tiny_cnn().eval()
    scripted = torch.jit.script(eager)
    ref = profile_model(handle(eager, 3, 8, 8))
    prof = profile_model(handle(scripted, 3, 8, 8))
    for key in ("params", "buffers", "macs", "weight_bytes", "output_shape"):
        assert prof[key] == ref[key], key
    assert "eager" in prof["note"]
    assert [r["name"] for r in prof["layers"]] == ["0", "1", "5"]  # conv, bn, linear
    assert [r["type"] for r in prof["layers"]] == ["Conv2d", "BatchNorm2d", "Linear"]


def test_input_size_override_and_model_left_as_it_was():
    model = tiny_cnn().train()  # BN in training mode would update its statistics if run so
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = InputSpec(shape=("batch", 3, 4, 4))  # Linear(64) needs 8x8: the override must win
    prof = profile_model(ModelHandle(format="torch", obj=model, input_spec=spec, name="m",
                                     source="m"), input_size=(8, 8))
    assert prof["input_shape"] == [3, 8, 8]
    assert model.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key

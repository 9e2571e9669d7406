"""Reading and writing .weights files (FORMAT.md §1): layouts built by hand with struct,
round trips, both header lengths, transposed connected layers, partial files, and errors
that say expected vs found."""
from __future__ import annotations

import os
import struct

import numpy as np
import pytest
import torch

from infertune.errors import ConfigError, ModelFileError, WeightsError
from infertune.load.darknet import (count_weight_floats, load_darknet, network_from_text, parse_cfg,
                                    read_weights, write_weights)

NET = "[net]\nwidth=6\nheight=6\nchannels=3\n"
# conv+BN, grouped conv without BN, standalone batchnorm, local, connected+BN, connected
MIXED = NET + """
[convolutional]
batch_normalize=1
filters=4
size=3
pad=1
activation=leaky
[convolutional]
filters=6
groups=2
size=3
stride=2
pad=1
activation=relu
[batchnorm]
[local]
filters=2
size=3
stride=1
pad=1
activation=linear
[maxpool]
size=2
stride=2
[connected]
output=5
batch_normalize=1
activation=linear
[connected]
output=3
[softmax]
"""
MIXED_FLOATS = ((4 * 4 + 4 * 3 * 9) + (6 + 6 * 2 * 9) + 3 * 6 + (2 * 9 + 9 * 2 * 6 * 9)
                + (5 + 5 * 8 + 3 * 5) + (3 + 3 * 5))  # fmt: skip


def randomize(net: torch.nn.Module, seed: int) -> None:
    """Random values everywhere, with positive variances."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in net.state_dict().items():
            values = torch.rand(tensor.shape, generator=gen) * 2 - 1
            tensor.copy_(values.abs() + 0.1 if name.endswith("running_var") else values)


def header(major=0, minor=2, revision=0, seen=0, wide=True) -> bytes:
    return struct.pack("<iii", major, minor, revision) + struct.pack("<Q" if wide else "<i", seen)


def floats(values) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def test_counts_agree_and_round_trip_is_exact(tmp_path):
    assert count_weight_floats(parse_cfg(MIXED)) == MIXED_FLOATS
    src = network_from_text(MIXED, name="mixed.cfg")
    assert src.weight_floats() == MIXED_FLOATS
    randomize(src, 1)
    path = tmp_path / "net.weights"
    assert write_weights(src, path, seen=123456789012) == 20 + 4 * MIXED_FLOATS
    assert path.read_bytes()[:20] == header(0, 2, 0, 123456789012)
    dst = network_from_text(MIXED, name="mixed.cfg")
    randomize(dst, 2)
    info = read_weights(dst, path)
    assert (info.major, info.minor, info.revision, info.seen, info.header_bytes, info.transpose) == (
        0, 2, 0, 123456789012, 20, False)
    assert info.floats == MIXED_FLOATS and info.layers_loaded == len(dst.layers)
    for (name, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        if name.endswith("num_batches_tracked") or name.endswith("layers.2.bn.bias"):
            continue  # not in the file ([batchnorm] beta is pjreddie's fixed 0)
        assert torch.equal(a, b), name
        assert b.dtype == torch.float32
    x = torch.rand(2, 3, 6, 6)
    with torch.no_grad():
        dst.layers[2].bn.bias.copy_(src.layers[2].bn.bias)
        torch.testing.assert_close(dst(x), src(x), rtol=0, atol=0)
    # the same payload behind an old 16-byte header (version 0.1, int32 seen) reads the same
    old = tmp_path / "old.weights"
    old.write_bytes(header(0, 1, 0, seen=42, wide=False) + path.read_bytes()[20:])
    again = network_from_text(MIXED, name="mixed.cfg")
    info = read_weights(again, old)
    assert (info.header_bytes, info.seen, info.layers_loaded) == (16, 42, len(again.layers))
    for (name, a), (_, b) in zip(dst.state_dict().items(), again.state_dict().items()):
        assert name.endswith(("num_batches_tracked", "layers.2.bn.bias")) or torch.equal(a, b), name


def test_conv_file_order_with_and_without_bn(tmp_path):
    text = NET + "[conv]\nbatch_normalize=1\nfilters=2\nsize=1\n[conv]\nfilters=3\nsize=1\n"
    net = network_from_text(text)
    payload = np.arange(2 * 4 + 2 * 3 + 3 + 3 * 2, dtype=np.float32)
    (tmp_path / "w").write_bytes(header() + floats(payload))
    read_weights(net, tmp_path / "w")
    bn_conv, plain = net.layers
    got = [bn_conv.bn.bias, bn_conv.bn.weight, bn_conv.bn.running_mean, bn_conv.bn.running_var,
           bn_conv.conv.weight, plain.conv.bias, plain.conv.weight]
    want = [payload[0:2], payload[2:4], payload[4:6], payload[6:8], payload[8:14].reshape(2, 3, 1, 1),
            payload[14:17], payload[17:23].reshape(3, 2, 1, 1)]  # beta, gamma, mean, var, weights
    for tensor, expected in zip(got, want):
        np.testing.assert_array_equal(tensor.detach().numpy(), expected)


def test_connected_order_sixteen_byte_header_and_transpose(tmp_path):
    text = "[net]\nwidth=1\nheight=1\nchannels=2\n[connected]\noutput=3\nbatch_normalize=1\n"
    bias, weight, bn = np.arange(3), np.arange(10, 16).reshape(3, 2), np.arange(20, 29)
    payload = floats(np.concatenate([bias, weight.ravel(), bn]))  # bias, weights, gamma/mean/var
    cases = {
        "v0.1": (header(0, 1, 0, seen=77, wide=False), 16, weight, False),
        "v0.2": (header(0, 2, 0, seen=77), 20, weight, False),
        # minor > 1000: transposed [in][out] matrix (and a 16-byte header, pjreddie's rule)
        "transposed": (header(0, 1001, 0, seen=77, wide=False), 16, None, True),
    }
    for name, (head, size, _, transpose) in cases.items():
        body = payload if not transpose else floats(np.concatenate([bias, weight.T.ravel(), bn]))
        (tmp_path / name).write_bytes(head + body)
        net = network_from_text(text)
        info = read_weights(net, tmp_path / name)
        assert (info.header_bytes, info.seen, info.transpose) == (size, 77, transpose)
        layer = net.layers[0]
        np.testing.assert_array_equal(layer.bn.bias.detach().numpy(), bias)
        np.testing.assert_array_equal(layer.fc.weight.detach().numpy(), weight)
        np.testing.assert_array_equal(layer.bn.weight.detach().numpy(), bn[:3])
        np.testing.assert_array_equal(layer.bn.running_var.numpy(), bn[6:])


def test_load_modifiers_dontload_numload_dontloadscales_flipped(tmp_path):
    text = (NET + "[conv]\nfilters=2\nsize=1\ndontload=1\n"
            "[conv]\nbatch_normalize=1\nfilters=3\nsize=1\nnumload=2\n"
            "[conv]\nbatch_normalize=1\nfilters=2\nsize=1\ndontloadscales=1\n"
            "[conv]\nfilters=2\nsize=1\nflipped=1\n")
    counts = [0, 2 * 4 + 2 * 2, 2 + 2 * 3, 2 + 2 * 2]  # inputs: 3, 2, 3, 2 channels
    assert count_weight_floats(parse_cfg(text)) == sum(counts)
    net = network_from_text(text)
    before = net.layers[0].conv.weight.detach().clone()
    payload = np.arange(sum(counts), dtype=np.float32)
    (tmp_path / "w").write_bytes(header() + floats(payload))
    read_weights(net, tmp_path / "w")
    assert torch.equal(net.layers[0].conv.weight, before)  # dontload: nothing consumed
    np.testing.assert_array_equal(net.layers[1].conv.weight.detach().numpy()[:2].ravel(), payload[8:12])
    np.testing.assert_array_equal(net.layers[2].conv.weight.detach().numpy().ravel(), payload[14:20])
    flipped = payload[22:26].reshape(2, 2)  # stored as (c·k·k) × n, transposed on load
    np.testing.assert_array_equal(net.layers[3].conv.weight.detach().numpy().reshape(2, 2), flipped.T)


def test_size_mismatch_errors_say_expected_and_found(tmp_path):
    text = NET + "[conv]\nfilters=2\nsize=1\n"  # 2 + 6 = 8 floats
    net = network_from_text(text, name="tiny.cfg")
    path = tmp_path / "net.weights"
    path.write_bytes(header() + floats(range(5)))
    message = f"{path}: expected 8 floats (52 bytes with a 20-byte header) for tiny.cfg, found 5 floats"
    with pytest.raises(WeightsError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        read_weights(net, path)
    path.write_bytes(header() + floats(range(9)))
    for partial in (False, True):  # a longer file is always an error
        with pytest.raises(WeightsError, match="expected 8 floats .* found 9 floats"):
            read_weights(net, path, allow_partial=partial)
    path.write_bytes(header() + floats(range(8)) + b"\x00\x01")
    with pytest.raises(WeightsError, match="found 8 floats and 2 stray bytes"):
        read_weights(net, path)
    path.write_bytes(header(wide=False, minor=1)[:10])
    with pytest.raises(WeightsError, match="expected a 16- or 20-byte header, found only 10 bytes"):
        read_weights(net, path)
    path.write_bytes(header()[:18])
    with pytest.raises(WeightsError, match=r"expected a 20-byte header \(version 0.2.0\), found only 18"):
        read_weights(net, path)


def test_partial_file_loads_whole_layers_only(tmp_path):
    text = (NET + "[conv]\nfilters=2\nsize=1\n[max]\nsize=2\nstride=2\n"
            "[conv]\nfilters=2\nsize=1\n[conv]\nfilters=1\nsize=1\n")
    net = network_from_text(text)
    third = net.layers[3].conv.weight.detach().clone()
    path = tmp_path / "net.conv.3"
    path.write_bytes(header() + floats(np.arange(8 + 6 + 1)))  # layers 0-2 and 1 float of layer 3
    with pytest.raises(WeightsError, match="expected 17 floats"):
        read_weights(net, path)
    info = read_weights(net, path, allow_partial=True)
    assert info.layers_loaded == 3 and info.floats == 15
    np.testing.assert_array_equal(net.layers[2].conv.weight.detach().numpy().ravel(), [10, 11, 12, 13])
    assert torch.equal(net.layers[3].conv.weight, third)  # the incomplete layer is left alone


def test_read_never_modifies_the_file_and_write_is_atomic(tmp_path):
    net = network_from_text(MIXED)
    path = tmp_path / "net.weights"
    write_weights(net, path)
    data, mtime = path.read_bytes(), os.stat(path).st_mtime_ns
    read_weights(network_from_text(MIXED), path)
    assert path.read_bytes() == data and os.stat(path).st_mtime_ns == mtime
    randomize(net, 3)
    write_weights(net, path)  # replaces in place, no temporary left behind
    assert path.read_bytes() != data and os.listdir(tmp_path) == ["net.weights"]


def test_missing_or_directory_weights(tmp_path):
    net = network_from_text(MIXED)
    with pytest.raises(ModelFileError, match="no such file"):
        read_weights(net, tmp_path / "none.weights")
    with pytest.raises(ModelFileError, match="is a directory"):
        read_weights(net, tmp_path)


def test_load_darknet_handle(tmp_path):
    cfg = tmp_path / "mixed.cfg"
    cfg.write_text(MIXED)
    state = torch.random.get_rng_state()
    handle = load_darknet(cfg, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    again = load_darknet(cfg, seed=5)
    pairs = zip(handle.obj.state_dict().values(), again.obj.state_dict().values())
    assert all(torch.equal(a, b) for a, b in pairs)
    assert handle.format == "torch" and handle.name == "mixed.cfg" and handle.source == str(cfg)
    assert handle.input_spec.shape == ("batch", 3, 6, 6) and not handle.obj.training
    assert handle.meta == {"family": "darknet", "bn_eps": "cpu", "num_classes": 3, "preprocess": "darknet",
                           "weights_header": None, "layers_loaded": 0}
    weights = tmp_path / "mixed.weights"
    write_weights(again.obj, weights, seen=9)
    loaded = load_darknet(cfg, weights, bn_eps="gpu", seed=1)
    assert loaded.source == f"{cfg}:{weights}" and loaded.meta["bn_eps"] == "gpu"
    assert loaded.meta["weights_header"]["seen"] == 9 and loaded.meta["layers_loaded"] == 8
    assert torch.equal(loaded.obj.layers[0].conv.weight, again.obj.layers[0].conv.weight)
    with pytest.raises(ModelFileError, match="no such cfg file"):
        load_darknet(tmp_path / "nope.cfg")
    with pytest.raises(ModelFileError, match="is a directory"):
        load_darknet(cfg, tmp_path)
    with pytest.raises(ConfigError, match="bn_eps"):
        load_darknet(cfg, bn_eps="fast")


def test_input_size_changes_only_connected_counts():
    conv_only = parse_cfg(NET + "[conv]\nfilters=4\nsize=3\n[avgpool]\n")
    assert count_weight_floats(conv_only) == count_weight_floats(conv_only, (32, 48)) == 4 + 4 * 27
    with_fc = parse_cfg(NET + "[connected]\noutput=2\n")
    assert count_weight_floats(with_fc) == 2 + 2 * 108
    assert count_weight_floats(with_fc, (4, 5)) == 2 + 2 * 60

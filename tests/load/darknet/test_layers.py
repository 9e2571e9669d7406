"""Layer semantics of the Darknet importer against literal numpy loops written from
FORMAT.md (never from the importer's own output).

Tolerances: the references run in float64 on the same float32 inputs; the torch layers run
in float32, so values of order 1-10 agree to ~1e-6 relative. Pure data movement (maxpool,
reorg, route, crop, upsample) must match exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from infertune.load.darknet import network_from_text

FLT_MAX = float(np.finfo(np.float32).max)
RTOL, ATOL = 1e-5, 1e-6  # float32 arithmetic vs float64 reference (see module docstring)


def net_text(c: int, h: int, w: int, *layers: str) -> str:
    return "\n".join([f"[net]\nwidth={w}\nheight={h}\nchannels={c}", *layers]) + "\n"


def run_layers(text: str, x: np.ndarray, **kw) -> tuple[torch.nn.Module, list[np.ndarray], np.ndarray]:
    """Builds the cfg (seeded), runs x, returns (net, every layer's output, net output)."""
    torch.manual_seed(0)
    net = network_from_text(text, **kw)
    outs: list[np.ndarray] = []
    hooks = [layer.register_forward_hook(lambda m, i, o: outs.append(o.detach().double().numpy()))
             for layer in net.layers]
    with torch.no_grad():
        y = net(torch.from_numpy(x.astype(np.float32)))
    for hook in hooks:
        hook.remove()
    return net, outs, y.double().numpy()


def rand(*shape: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV = "[convolutional]\nfilters={f}\nsize={k}\nstride={s}\npad=1\nactivation=linear"


# --- maxpool (FORMAT §3.3) -------------------------------------------------------------

def maxpool_loop(x: np.ndarray, size: int, stride: int, padding: int) -> np.ndarray:
    """Darknet forward_maxpool_layer: window at (i·stride − padding/2), outside = −FLT_MAX."""
    b, c, h, w = x.shape
    oh, ow = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
    out = np.empty((b, c, oh, ow))
    off = -(padding // 2)
    for n in range(b):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    best = -FLT_MAX
                    for n_ in range(size):
                        for m in range(size):
                            y, xx = off + i * stride + n_, off + j * stride + m
                            if 0 <= y < h and 0 <= xx < w:
                                best = max(best, x[n, k, y, xx])
                    out[n, k, i, j] = best
    return out


@pytest.mark.parametrize("size,stride,padding,hw", [
    (2, 1, None, 13), (2, 2, None, 13), (2, 2, None, 12), (3, 2, 0, 13), (5, 1, None, 9), (3, 2, 2, 8),
])
def test_maxpool_matches_darknet_loop(size, stride, padding, hw):
    pad_line = "" if padding is None else f"\npadding={padding}"
    text = net_text(2, hw, hw, f"[maxpool]\nsize={size}\nstride={stride}{pad_line}")
    x = rand(2, 2, hw, hw)
    _, _, y = run_layers(text, x)
    expected = maxpool_loop(x.astype(np.float64), size, stride, size - 1 if padding is None else padding)
    np.testing.assert_array_equal(y, expected)


def test_maxpool_size2_stride1_keeps_13x13_and_last_row_is_input():
    x = np.tile(rand(1, 1, 13, 1), (1, 1, 1, 13))  # constant along W: windows only mix rows
    net, _, y = run_layers(net_text(1, 13, 13, "[maxpool]\nsize=2\nstride=1"), x)
    assert net.out_shapes[0] == (1, 13, 13) and y.shape == (1, 1, 13, 13)
    np.testing.assert_array_equal(y[0, 0, 12], x[0, 0, 12])  # max(x, −FLT_MAX) = x
    np.testing.assert_array_equal(y[0, 0, :12], np.maximum(x[0, 0, :12], x[0, 0, 1:]))


# --- shortcut (FORMAT §3.7) ------------------------------------------------------------

def shortcut_loop(prev: np.ndarray, frm: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """Darknet shortcut_cpu, literally: strided/sparse add over the overlap."""
    out = prev.copy()
    _, c2, h2, w2 = prev.shape
    _, c1, h1, w1 = frm.shape
    stride, sample = max(w1 // w2, 1), max(w2 // w1, 1)
    for b in range(prev.shape[0]):
        for k in range(min(c1, c2)):
            for j in range(min(h1, h2)):
                for i in range(min(w1, w2)):
                    o = out[b, k, j * sample, i * sample]
                    out[b, k, j * sample, i * sample] = alpha * o + beta * frm[b, k, j * stride, i * stride]
    return out


def leaky(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, 0.1 * x)


@pytest.mark.parametrize("layers,frm_index,alpha,beta,act", [
    # from is larger (8x8 vs 4x4, strided) and has fewer channels (3 vs 5)
    ([CONV.format(f=3, k=3, s=1), CONV.format(f=5, k=3, s=2)], 0, 0.5, 2.0, "leaky"),
    # from is smaller (4x4 vs 8x8: added every 2nd pixel) and has more channels (6 vs 2)
    ([CONV.format(f=6, k=3, s=2), "[upsample]\nstride=2", CONV.format(f=2, k=1, s=1)],
     0, 0.25, -1.5, "linear"),
    # equal shapes: plain prev + from
    ([CONV.format(f=4, k=3, s=1), CONV.format(f=4, k=3, s=1)], 0, 1.0, 1.0, "linear"),
])
def test_shortcut_matches_darknet_loop(layers, frm_index, alpha, beta, act):
    short = f"[shortcut]\nfrom={frm_index}\nalpha={alpha}\nbeta={beta}\nactivation={act}"
    text = net_text(2, 8, 8, *layers, short)
    _, outs, _ = run_layers(text, rand(2, 2, 8, 8))
    expected = shortcut_loop(outs[-2], outs[frm_index], alpha, beta)
    expected = leaky(expected) if act == "leaky" else expected
    np.testing.assert_allclose(outs[-1], expected, rtol=RTOL, atol=ATOL)


# --- reorg (FORMAT §3.8) ---------------------------------------------------------------

def reorg_loop(x: np.ndarray, s: int, reverse: bool) -> np.ndarray:
    """Darknet reorg: input memory seen as (C/s², H·s, W·s); output channel k reads
    channel k % (C/s²) at row j·s + (k / (C/s²)) / s, column i·s + (k / (C/s²)) % s."""
    b, c, h, w = x.shape
    oc = c // (s * s)
    flat_in = x.reshape(b, -1)
    flat_out = np.zeros_like(flat_in)
    for n in range(b):
        for k in range(c):
            for j in range(h):
                for i in range(w):
                    in_index = i + w * (j + h * k)
                    c2, offset = k % oc, k // oc
                    w2, h2 = i * s + offset % s, j * s + offset // s
                    out_index = w2 + w * s * (h2 + h * s * c2)
                    if reverse:
                        flat_out[n, out_index] = flat_in[n, in_index]
                    else:
                        flat_out[n, in_index] = flat_in[n, out_index]
    shape = (oc, h * s, w * s) if reverse else (c * s * s, h // s, w // s)
    return flat_out.reshape(b, *shape)


@pytest.mark.parametrize("c,h,w,s,reverse", [(8, 6, 4, 2, False), (4, 6, 6, 2, False), (18, 6, 3, 3, False),
                                             (8, 3, 2, 2, True), (9, 2, 2, 3, True)])
def test_reorg_matches_darknet_loop(c, h, w, s, reverse):
    text = net_text(c, h, w, f"[reorg]\nstride={s}\nreverse={int(reverse)}")
    x = rand(2, c, h, w)
    _, _, y = run_layers(text, x)
    np.testing.assert_array_equal(y, reorg_loop(x, s, reverse))


def test_reorg_is_not_pixel_unshuffle():
    x = rand(1, 8, 4, 4)
    _, _, y = run_layers(net_text(8, 4, 4, "[reorg]\nstride=2"), x)
    assert not np.array_equal(y, torch.nn.functional.pixel_unshuffle(torch.from_numpy(x), 2).numpy())


def test_reorg_flatten_and_extra_modes():
    x = rand(2, 3, 4, 5)
    _, _, y = run_layers(net_text(3, 4, 5, "[reorg]\nflatten=1"), x)  # CHW -> HWC memory
    np.testing.assert_array_equal(y.reshape(2, -1), x.transpose(0, 2, 3, 1).reshape(2, -1))
    _, _, y = run_layers(net_text(3, 4, 5, "[reorg]\nextra=7"), x)
    np.testing.assert_array_equal(y, np.concatenate([x.reshape(2, -1), np.zeros((2, 7))], axis=1))


# --- softmax, crop, upsample, route ------------------------------------------------------

def test_softmax_groups_and_temperature():
    x = rand(3, 4, 3, 2)
    _, _, y = run_layers(net_text(4, 3, 2, "[softmax]\ngroups=4\ntemperature=0.5"), x)
    z = x.reshape(3, 4, 6).astype(np.float64) / 0.5  # 4 consecutive chunks of 24/4 = 6
    e = np.exp(z - z.max(axis=2, keepdims=True))
    np.testing.assert_allclose(y, (e / e.sum(axis=2, keepdims=True)).reshape(3, 24), rtol=RTOL, atol=ATOL)


def test_softmax_output_is_flat_so_conv_after_it_fails():
    from infertune.errors import DarknetCfgError

    with pytest.raises(DarknetCfgError, match=r"<cfg>:6: layer 1 \[convolutional\]"):
        network_from_text(net_text(2, 2, 2, "[softmax]", CONV.format(f=1, k=1, s=1)))


@pytest.mark.parametrize("noadjust", [0, 1])
def test_crop_is_centre_crop_and_2x_minus_1(noadjust):
    x = rand(2, 3, 9, 10)
    _, _, y = run_layers(net_text(3, 9, 10, f"[crop]\ncrop_height=5\ncrop_width=6\nnoadjust={noadjust}"), x)
    expected = x[:, :, 2:7, 2:8]  # offsets (9-5)/2 = 2, (10-6)/2 = 2
    np.testing.assert_allclose(y, expected if noadjust else 2 * expected - 1, rtol=RTOL, atol=ATOL)


def test_upsample_nearest_times_scale_and_negative_stride_sums():
    x = rand(2, 3, 4, 5)
    _, _, y = run_layers(net_text(3, 4, 5, "[upsample]\nstride=2\nscale=0.5"), x)
    np.testing.assert_allclose(y, 0.5 * x.repeat(2, axis=2).repeat(2, axis=3), rtol=RTOL, atol=ATOL)
    x = rand(1, 2, 7, 5)
    _, _, y = run_layers(net_text(2, 7, 5, "[upsample]\nstride=-2"), x)
    expected = np.zeros((1, 2, 3, 2))
    for j in range(3):
        for i in range(2):
            block = x[:, :, 2 * j:2 * j + 2, 2 * i:2 * i + 2].astype(np.float64)
            expected[:, :, j, i] = block.sum(axis=(2, 3))
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=ATOL)


def test_route_absolute_relative_and_ab_groups():
    text = net_text(2, 6, 6, CONV.format(f=3, k=3, s=1), CONV.format(f=4, k=3, s=1),
                    CONV.format(f=2, k=3, s=2),
                    "[route]\nlayers=1,-3",          # 3: absolute 1 then relative -3 = 0
                    "[route]\nlayers=-1,0\ngroups=1",  # 4: channels 7 + 3
                    "[route]\nlayers=1\ngroups=2\ngroup_id=1",  # 5: second half of layer 1
                    "[route]\nlayers=2,0")           # 6: 2x3x3 and 3x6x6 differ: flat concat
    net, outs, _ = run_layers(text, rand(2, 2, 6, 6))
    np.testing.assert_array_equal(outs[3], np.concatenate([outs[1], outs[0]], axis=1))
    np.testing.assert_array_equal(outs[4], np.concatenate([outs[3], outs[0]], axis=1))
    np.testing.assert_array_equal(outs[5], outs[1][:, 2:4])
    flat = np.concatenate([outs[2].reshape(2, -1), outs[0].reshape(2, -1)], axis=1)
    np.testing.assert_array_equal(outs[6], flat)
    assert net.out_shapes[3:] == [(7, 6, 6), (10, 6, 6), (2, 6, 6), 18 + 108]


def test_route_out_of_range_names_layer_and_line():
    from infertune.errors import DarknetCfgError

    text = net_text(1, 4, 4, CONV.format(f=1, k=1, s=1), "[route]\nlayers=-3")
    with pytest.raises(DarknetCfgError, match=r"^<cfg>:12: layer 1 \[route\]: layers=-3 points to layer -2"):
        network_from_text(text)


# --- batch norm epsilon (FORMAT §3.2) ----------------------------------------------------

def _bn_net(bn_eps: str, gamma, beta, mean, var):
    text = net_text(3, 2, 2, "[convolutional]\nbatch_normalize=1\nfilters=3\nsize=1\nactivation=linear")
    net = network_from_text(text, bn_eps=bn_eps)
    conv, bn = net.layers[0].conv, net.layers[0].bn
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))  # the conv passes x through
        pairs = ((bn.weight, gamma), (bn.bias, beta), (bn.running_mean, mean), (bn.running_var, var))
        for tensor, values in pairs:
            tensor.copy_(torch.tensor(values))
    return net


def test_bn_eps_cpu_and_gpu_formulas():
    gamma, beta, mean, var = [1.5, -0.5, 2.0], [0.1, 0.2, -0.3], [0.2, -0.1, 0.05], [1.0, 0.01, 0.001]
    x = rand(2, 3, 2, 2).astype(np.float64)
    g, b, m, v = (np.array(a).reshape(1, 3, 1, 1) for a in (gamma, beta, mean, var))
    expected = {"cpu": (x - m) / (np.sqrt(v) + 1e-6) * g + b, "gpu": (x - m) / np.sqrt(v + 1e-5) * g + b}
    for mode, want in expected.items():
        net = _bn_net(mode, gamma, beta, mean, var)
        with torch.no_grad():
            y = net(torch.from_numpy(x).float()).double().numpy()
        np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
        bn = net.layers[0].bn
        assert bn.bn_eps == mode and net.bn_eps == mode
        std = np.sqrt(v.ravel()) + 1e-6 if mode == "cpu" else np.sqrt(v.ravel() + 1e-5)
        np.testing.assert_allclose(bn.effective_std().numpy(), std, rtol=1e-6)
        np.testing.assert_array_equal(bn.running_var.numpy(), np.float32(var))  # buffers untouched
    # the conventions really differ for small variances (~5e-3 relative at var=0.001)
    rel = np.abs(expected["cpu"] - expected["gpu"])[:, 2] / np.abs(expected["gpu"][:, 2])
    assert rel.max() > 1e-3


# --- activations (FORMAT §4) -------------------------------------------------------------

def _softplus(x):
    return np.where(x > 20, x, np.where(x < -20, np.exp(x), np.log1p(np.exp(x))))


def _stair(x):
    n = np.floor(x)
    return np.where(n % 2 == 0, np.floor(x / 2), (x - n) + np.floor(x / 2))


ACTIVATIONS = {
    "linear": lambda x: x,
    "leaky": leaky,
    "revleaky": leaky,
    "relu": lambda x: np.maximum(x, 0),
    "logistic": lambda x: 1 / (1 + np.exp(-x)),
    "loggy": lambda x: 2 / (1 + np.exp(-x)) - 1,
    "tanh": lambda x: (np.exp(2 * x) - 1) / (np.exp(2 * x) + 1),
    "elu": lambda x: np.where(x >= 0, x, np.exp(x) - 1),
    "selu": lambda x: np.where(x >= 0, 1.0507 * x, 1.0507 * 1.6732 * (np.exp(x) - 1)),
    "relie": lambda x: np.where(x > 0, x, 0.01 * x),
    "ramp": lambda x: x * (x > 0) + 0.1 * x,
    "plse": lambda x: np.where(x < -4, 0.01 * (x + 4), np.where(x > 4, 0.01 * (x - 4) + 1, 0.125 * x + 0.5)),
    "hardtan": lambda x: np.clip(x, -1, 1),
    "lhtan": lambda x: np.where(x < 0, 0.001 * x, np.where(x > 1, 0.001 * (x - 1) + 1, x)),
    "stair": _stair,
    "mish": lambda x: x * np.tanh(_softplus(x)),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "hard_mish": lambda x: np.where(x > 0, x, np.where(x > -2, x * x / 2 + x, 0)),
    "relu6": lambda x: np.clip(x, 0, 6),
    "gelu": lambda x: 0.5 * x * (1 + np.tanh(0.797885 * x + 0.035677 * x**3)),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_formula(name):
    grid = np.array([-25, -5, -4.5, -3, -2.5, -2, -1.5, -1, -0.5, -0.1, 0, 0.1, 0.5, 1, 1.5, 2, 2.5,
                     3.5, 4.5, 5, 6.5, 25], dtype=np.float32)
    x = np.concatenate([grid, rand(42)]).reshape(1, 1, 8, 8)
    _, _, y = run_layers(net_text(1, 8, 8, f"[activation]\nactivation={name}"), x)
    np.testing.assert_allclose(y, ACTIVATIONS[name](x.astype(np.float64)), rtol=1e-5, atol=1e-6)


def test_default_activations_conv_connected_logistic_shortcut_linear():
    net = network_from_text(net_text(1, 2, 2, "[convolutional]", "[connected]", "[shortcut]\nfrom=-1",
                                     "[activation]"))
    names = [getattr(layer.act, "darknet_name", None) for layer in net.layers]
    assert names == ["logistic", "logistic", "linear", "linear"]


# --- connected, LRN, l2norm, local, heads, cost ---------------------------------------------

def test_connected_flattens_chw_and_applies_bn_then_activation():
    x = rand(2, 2, 3, 4)
    text = net_text(2, 3, 4, "[connected]\noutput=5",
                    "[connected]\noutput=3\nbatch_normalize=1\nactivation=relu")
    net, outs, y = run_layers(text, x)
    fc = net.layers[0].fc
    w, b = fc.weight.detach().double().numpy(), fc.bias.detach().double().numpy()
    first = 1 / (1 + np.exp(-(x.reshape(2, -1) @ w.T + b)))  # default activation: logistic
    np.testing.assert_allclose(outs[0].reshape(2, 5), first, rtol=RTOL, atol=ATOL)
    layer = net.layers[1]
    w = layer.fc.weight.detach().double().numpy()
    bn = {k: getattr(layer.bn, k).detach().double().numpy()
          for k in ("weight", "bias", "running_mean", "running_var")}
    z = first @ w.T
    z = (z - bn["running_mean"]) / (np.sqrt(bn["running_var"]) + 1e-6) * bn["weight"] + bn["bias"]
    np.testing.assert_allclose(y, np.maximum(z, 0), rtol=RTOL, atol=ATOL)
    assert net.out_shapes == [(5, 1, 1), (3, 1, 1)] and y.shape == (2, 3)


def test_lrn_matches_darknet_sliding_window():
    size, alpha, beta, kappa = 5, 0.05, 0.75, 2.0  # keeps every norm positive
    x = rand(2, 7, 3, 3).astype(np.float64)
    text = net_text(7, 3, 3, f"[lrn]\nsize={size}\nalpha={alpha}\nbeta={beta}\nkappa={kappa}")
    _, _, y = run_layers(text, x.astype(np.float32))
    sq, c = x * x, x.shape[1]
    norms = np.empty_like(x)
    norms[:, 0] = kappa + alpha * sq[:, : size // 2].sum(axis=1)  # Darknet's initial window
    for k in range(1, c):  # ... then it slides: drop channel prev, add channel next
        norms[:, k] = norms[:, k - 1]
        prev, nxt = k - (size - 1) // 2 - 1, k + size // 2
        if prev >= 0:
            norms[:, k] -= alpha * sq[:, prev]
        if nxt < c:
            norms[:, k] += alpha * sq[:, nxt]
    assert norms.min() > 0
    np.testing.assert_allclose(y, x * norms ** -beta, rtol=1e-5, atol=1e-6)


def test_l2norm_divides_by_channel_norm():
    x = rand(2, 3, 2, 2).astype(np.float64)
    _, _, y = run_layers(net_text(3, 2, 2, "[l2norm]"), x.astype(np.float32))
    np.testing.assert_allclose(y, x / np.sqrt((x * x).sum(axis=1, keepdims=True)), rtol=RTOL, atol=ATOL)


def test_local_layer_uses_one_filter_per_position():
    x = rand(1, 2, 5, 4).astype(np.float64)
    text = net_text(2, 5, 4, "[local]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=linear")
    net, _, y = run_layers(text, x.astype(np.float32))
    layer = net.layers[0]
    weight, bias = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    oh, ow = 3, 2  # (5-1)/2+1, (4-1)/2+1
    assert net.out_shapes[0] == (3, oh, ow) and weight.shape == (oh * ow, 3, 2 * 9)
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    expected = np.empty((3, oh, ow))
    for yy in range(oh):
        for xx in range(ow):
            patch = xp[:, 2 * yy:2 * yy + 3, 2 * xx:2 * xx + 3].reshape(-1)  # c, ky, kx order
            expected[:, yy, xx] = weight[yy * ow + xx] @ patch + bias[:, yy, xx]
    np.testing.assert_allclose(y[0], expected, rtol=RTOL, atol=ATOL)


def test_heads_pass_through_and_output_skips_cost():
    text = net_text(3, 4, 4, "[convolutional]\nfilters=14\nsize=1\nactivation=linear",
                    "[region]\nclasses=2\ncoords=4\nnum=2", "[yolo]\nclasses=2\nmask=0,1\nnum=4", "[dropout]")
    torch.manual_seed(0)
    net = network_from_text(text)
    with torch.no_grad():
        conv = net.layers[0](torch.from_numpy(rand(2, 3, 4, 4)))
        maps = net(torch.from_numpy(rand(2, 3, 4, 4)))
    assert net.output_heads == [1, 2] and net.output_names == ["region_1", "yolo_2"]
    assert isinstance(maps, tuple) and len(maps) == 2  # every head is an output, raw
    for out in maps:
        np.testing.assert_array_equal(out.numpy(), conv.numpy())
    text = net_text(2, 3, 3, "[avgpool]", "[softmax]", "[cost]\ntype=sse")
    net, outs, y = run_layers(text, rand(2, 2, 3, 3))
    assert net.output_index == 1 and len(outs) == 2 and y.shape == (2, 2)  # cost not run
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-6)


def test_scale_channels_and_sam():
    text = net_text(2, 5, 5, "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=linear", "[avgpool]",
                    "[scale_channels]\nfrom=-2", "[convolutional]\nfilters=4\nsize=1\nactivation=logistic",
                    "[sam]\nfrom=-2")
    _, outs, _ = run_layers(text, rand(1, 2, 5, 5))
    np.testing.assert_allclose(outs[2], outs[0] * outs[1], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(outs[4], outs[2] * outs[3], rtol=RTOL, atol=ATOL)


def test_layers_are_tagged_for_the_profiler():
    net = network_from_text(net_text(3, 8, 8, "[conv]\nfilters=2\nsize=3\npad=1", "[max]\nsize=2\nstride=2"))
    assert not net.training
    conv, pool = net.layers
    assert conv.profile_as_layer and conv.darknet_type == "convolutional" and conv.line == 5
    assert pool.darknet_type == "maxpool" and pool.line == 9 and pool.index == 1
    assert net.input_size == (3, 8, 8) and net.out_shapes == [(2, 8, 8), (2, 4, 4)]


# --- export ------------------------------------------------------------------------------

EXPORT_CFG = net_text(3, 12, 12,
    "[convolutional]\nbatch_normalize=1\nfilters=8\nsize=3\npad=1\nactivation=leaky",
    "[maxpool]\nsize=2\nstride=1",
    "[convolutional]\nbatch_normalize=1\nfilters=16\nsize=3\nstride=2\npad=1\nactivation=mish",
    "[shortcut]\nfrom=-3\nalpha=0.5\nbeta=2",  # strided, channel-truncating
    "[route]\nlayers=1", "[reorg]\nstride=2", "[route]\nlayers=-1,3",
    "[convolutional]\nfilters=4\nsize=1\nactivation=linear",
    "[upsample]\nstride=2", "[route]\nlayers=-1,0\ngroups=2\ngroup_id=1",
    "[shortcut]\nfrom=2\nalpha=0.3\nactivation=leaky",  # sparse: from is smaller
    "[convolutional]\nfilters=5\nsize=1\nactivation=linear", "[avgpool]", "[softmax]")  # fmt: skip


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore:Constant folding:UserWarning")
def test_onnx_export_dynamic_batch_matches_torch(tmp_path):
    import onnx
    import onnxruntime as ort

    torch.manual_seed(0)
    net = network_from_text(EXPORT_CFG)
    for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        with torch.no_grad():  # non-trivial statistics so the BN arithmetic is exercised
            bn.running_mean.uniform_(-0.5, 0.5), bn.running_var.uniform_(0.01, 2.0), bn.bias.uniform_(-1, 1)
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (torch.rand(1, 3, 12, 12),), str(path), dynamo=False, opset_version=17,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert ops.count("BatchNormalization") == 2 and "Pow" not in ops and "Sqrt" not in ops
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, 12, 12)
    with torch.no_grad():
        expected = net(x).numpy()
    for batch in (1, 3):  # atol 1e-4: ORT and torch kernels sum in different orders
        got = session.run(None, {"input": x[:batch].numpy()})[0]
        np.testing.assert_allclose(got, expected[:batch], atol=1e-4)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_jit_trace_keeps_batch_dynamic():
    torch.manual_seed(0)
    net = network_from_text(EXPORT_CFG)
    traced = torch.jit.trace(net, torch.rand(1, 3, 12, 12))
    x = torch.rand(4, 3, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), net(x))


# --- conv variants: AB stride_x/stride_y + dilation, antialiasing; pjreddie deconv -------

def conv_loop(x: np.ndarray, weight: np.ndarray, stride: tuple[int, int], pad: int, dilation: int,
              groups: int = 1) -> np.ndarray:
    """im2col-style correlation, zero padding pad·dilation, Darknet's output size."""
    b, c, h, w = x.shape
    n, cg, k, _ = weight.shape
    oh, ow = (h + 2 * pad - k) // stride[0] + 1, (w + 2 * pad - k) // stride[1] + 1
    p = pad * dilation
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((b, n, oh, ow))
    for f in range(n):
        g = f // (n // groups)
        for y in range(oh):
            for xx in range(ow):
                for ky in range(k):
                    for kx in range(k):
                        row, col = y * stride[0] + ky * dilation, xx * stride[1] + kx * dilation
                        pix = xp[:, g * cg:(g + 1) * cg, row, col]
                        out[:, f, y, xx] += pix @ weight[f, :, ky, kx]
    return out


def _params(layer) -> tuple[np.ndarray, np.ndarray]:
    return layer.conv.weight.detach().double().numpy(), layer.conv.bias.detach().double().numpy()


def test_conv_stride_xy_dilation_and_groups():
    text = net_text(4, 9, 8, "[convolutional]\nfilters=6\nsize=3\nstride_x=1\nstride_y=2\ndilation=2\n"
                    "pad=1\ngroups=2\nactivation=linear")
    x = rand(2, 4, 9, 8).astype(np.float64)
    net, _, y = run_layers(text, x.astype(np.float32))
    weight, bias = _params(net.layers[0])
    expected = conv_loop(x, weight, (2, 1), 1, 2, groups=2) + bias.reshape(1, -1, 1, 1)
    assert net.out_shapes[0] == (6, 5, 8)
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=1e-5)


def test_conv_antialiasing_blurs_after_activation():
    text = net_text(2, 6, 6, "[convolutional]\nfilters=2\nsize=3\nstride=2\npad=1\nantialiasing=1\n"
                    "activation=leaky")
    x = rand(1, 2, 6, 6).astype(np.float64)
    net, _, y = run_layers(text, x.astype(np.float32))
    weight, bias = _params(net.layers[0])
    host = leaky(conv_loop(x, weight, (1, 1), 1, 1) + bias.reshape(1, -1, 1, 1))
    blur = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    expected = conv_loop(host, np.stack([blur[None], blur[None]]), (2, 2), 1, 1, groups=2)
    assert net.out_shapes[0] == (2, 3, 3) and net.weight_floats() == 2 + 2 * 2 * 9  # blur not stored
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=1e-5)


def test_deconvolutional_matches_col2im_loop():
    text = net_text(2, 3, 4, "[deconvolutional]\nfilters=3\nsize=3\nstride=2\npad=1\nactivation=linear")
    x = rand(1, 2, 3, 4).astype(np.float64)
    net, _, y = run_layers(text, x.astype(np.float32))
    weight, bias = _params(net.layers[0])  # (c, n, k, k): Darknet's c × (n·k·k) matrix
    oh, ow = (3 - 1) * 2 + 3 - 2, (4 - 1) * 2 + 3 - 2
    expected = np.zeros((1, 3, oh, ow)) + bias.reshape(1, -1, 1, 1)
    for c in range(2):
        for yy in range(3):
            for xx in range(4):
                for ky in range(3):
                    for kx in range(3):
                        oy, ox = yy * 2 - 1 + ky, xx * 2 - 1 + kx
                        if 0 <= oy < oh and 0 <= ox < ow:
                            expected[0, :, oy, ox] += weight[c, :, ky, kx] * x[0, c, yy, xx]
    assert net.out_shapes[0] == (3, oh, ow) and net.weight_floats() == 3 + 2 * 3 * 9
    np.testing.assert_allclose(y, expected, rtol=RTOL, atol=1e-5)


@pytest.mark.parametrize("size,stride,padding", [(2, 1, 1), (2, 2, 1), (3, 2, 2), (5, 1, 4)])
def test_maxpool_edge_padding_equals_flt_max_padding(size, stride, padding):
    # Edge replication is used instead of -FLT_MAX when every window holds a real pixel;
    # the maxima must be identical (exact), even for inputs far below zero.
    import torch
    import torch.nn.functional as F

    x = torch.randn(2, 3, 7, 9) * 1e6 - 1e7
    lo, hi = padding // 2, padding - padding // 2
    want = F.max_pool2d(F.pad(x, (lo, hi, lo, hi), value=-3.4028234663852886e38), size, stride)
    text = f"[net]\nwidth=9\nheight=7\nchannels=3\n\n[maxpool]\nsize={size}\nstride={stride}\npadding={padding}\n"
    from infertune.load.darknet import network_from_text

    net = network_from_text(text)
    with torch.inference_mode():
        got = net.layers[0](x)
    assert torch.equal(got, want)
    assert got.abs().max() < 1e30  # no -FLT_MAX leaks out

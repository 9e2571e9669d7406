"""The .cfg lexer/parser (FORMAT.md §2): Darknet's lexical rules, aliases, C number parsing,
and one-line errors naming file and line."""
from __future__ import annotations

import pytest

from infertune.errors import DarknetCfgError, ModelFileError, UnsupportedModel
from infertune.load.darknet import network_from_text, parse_cfg, read_cfg
from infertune.load.darknet.cfg import atof, atoi

NET = "[net]\nwidth=8\nheight=8\nchannels=3\n"


def test_whitespace_everywhere_crlf_comments_and_first_duplicate_wins():
    text = ("[net]\r\n width = 8 \r\n\theight=8\r\nchannels = 3\r\n# comment\r\n   ; also\r\n\r\n"
            "[conv olutional]\r\nfilters = 4\r\nfilters=9\r\nactivation = le aky\r\nsize=3#x\r\n"
            "[route]\r\nlayers = -1 , 0\r\n")
    net_sec, conv, route = parse_cfg(text, "x.cfg")
    assert net_sec.type == "net" and net_sec.index == -1 and net_sec.get_int("width", 0) == 8
    assert conv.type == "convolutional" and conv.index == 0 and conv.line == 8
    assert conv.options == {"filters": "4", "activation": "leaky", "size": "3#x"}
    assert conv.get_int("filters", 1) == 4 and conv.get_int("size", 1) == 3  # atoi("3#x") = 3
    assert conv.line_of("activation") == 11
    assert route.get_int_list("layers") == [-1, 0]
    net = network_from_text(text)  # "leaky\r" would have been relu in pjreddie; we strip \r
    assert net.layers[0].act.darknet_name == "leaky" and net.out_shapes[0] == (4, 6, 6)


def test_key_without_equals_is_present_but_absent_and_shadows_later_ones():
    (_, conv) = parse_cfg(NET + "[convolutional]\nfilters\nfilters=7\n")
    assert conv.options["filters"] is None and not conv.has("filters")
    assert conv.get_int("filters", 1) == 1  # option_find returns the first (NULL) value


@pytest.mark.parametrize("alias,canonical", [
    ("conv", "convolutional"), ("conn", "connected"), ("max", "maxpool"), ("avg", "avgpool"),
    ("soft", "softmax"), ("lrn", "normalization"), ("deconv", "deconvolutional"), ("silence", "empty"),
    ("local_avg", "local_avgpool"), ("Gaussian_yolo", "Gaussian_yolo"), ("reorg3d", "reorg3d"),
])
def test_section_aliases(alias, canonical):
    assert parse_cfg(f"[network]\n[{alias}]\n")[1].type == canonical


def test_atoi_and_atof_follow_c():
    ints = ("12", "-3", "+4", "1.9", "7abc", "abc", "", "0x10")
    assert [atoi(s) for s in ints] == [12, -3, 4, 1, 7, 0, 0, 0]
    floats = (".1", "-2.5e2", "3#x", "1e", "abc", "5.", "0x1p3")
    assert [atof(s) for s in floats] == [0.1, -250.0, 3.0, 1.0, 0.0, 5.0, 8.0]
    (_, route) = parse_cfg(NET + "[route]\nlayers=-1,\n")
    assert route.get_int_list("layers") == [-1, 0]  # Darknet counts commas: "" is atoi 0


@pytest.mark.parametrize("text,message", [
    (NET + "\n[convolutional]\nsize=3\n\n[convoluted]\n", "net.cfg:9: unknown section [convoluted]"),
    (NET + "[convolutional]\nsizee=3\n", "net.cfg:6: unknown key 'sizee' in [convolutional]"),
    (NET + "[convolutional]\nsize=\n", "net.cfg:6: empty value in 'size='"),
    (NET + "[maxpool]\nfilters=3\n", "net.cfg:6: unknown key 'filters' in [maxpool]"),
    ("width=3\n[net]\n", "net.cfg:1: option 'width=3' before the first [section]"),
    ("[convolutional]\n[net]\n", "net.cfg:1: first section must be [net] or [network]"),
    ("# nothing\n\n", "net.cfg:1: no sections"),
    (NET + "[net]\n", "net.cfg:5: [net] may only be the first section"),
    (NET + "[convolutional\n", "net.cfg:5: unknown section [convolutional"),
])
def test_grammar_errors_name_file_and_line(text, message):
    with pytest.raises(DarknetCfgError) as info:
        parse_cfg(text, "net.cfg")
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert info.value.path == "net.cfg"


def test_unknown_activation_is_an_error_naming_its_line():
    message = r"^n.cfg:7: layer 0 \[convolutional\]: unknown activation 'leakyy'$"
    with pytest.raises(DarknetCfgError, match=message):
        network_from_text(NET + "[convolutional]\nfilters=2\nactivation=leakyy\n", name="n.cfg")
    with pytest.raises(DarknetCfgError, match="unknown activation 'leaky#x'"):  # no inline comments
        network_from_text(NET + "[convolutional]\nactivation=leaky#x\n")


@pytest.mark.parametrize("layers,message", [
    ("[softmax]\ngroups=5\n", r"n.cfg:6: layer 0 \[softmax\]: groups=5 does not divide the 192 input values"),
    ("[softmax]\n[convolutional]\n",
     r"n.cfg:6: layer 1 \[convolutional\]: the layer before must output an image"),
    ("[shortcut]\nfrom=0\n", r"n.cfg:6: layer 0 \[shortcut\]: from=0 points to layer 0"),
    ("[convolutional]\nfilters=4\ngroups=2\n", r"n.cfg:7: layer 0 \[convolutional\]: groups=2 must divide"),
    ("[region]\nclasses=2\nnum=2\n", r"n.cfg:5: layer 0 \[region\]: expects 2×7 = 14 input channels"),
    ("[maxpool]\nsize=20\npadding=0\n", r"n.cfg:5: layer 0 \[maxpool\]: size=20 does not fit"),
    ("[route]\n", r"n.cfg:5: layer 0 \[route\]: needs layers="),
])
def test_shape_errors_name_layer_and_line(layers, message):
    with pytest.raises(DarknetCfgError, match="^" + message):
        network_from_text(NET + layers, name="n.cfg")


@pytest.mark.parametrize("pad,padding,size,expected_padding", [(1, 0, 1, 0), (1, 5, 3, 1), (1, 0, 7, 3),
                                                               (0, 2, 3, 2), (0, 0, 3, 0)])
def test_conv_pad_overrides_padding_with_size_over_2(pad, padding, size, expected_padding):
    net = network_from_text(f"{NET}[convolutional]\nfilters=2\nsize={size}\npad={pad}\npadding={padding}\n")
    assert net.layers[0].conv.padding == (expected_padding, expected_padding)
    assert net.out_shapes[0] == (2, 8 + 2 * expected_padding - size + 1, 8 + 2 * expected_padding - size + 1)


def test_alexeyab_keys_are_accepted():
    text = """[net]
batch=64
subdivisions=8
width=32
height=32
channels=3
letter_box=1
mosaic=1
flip=0
blur=0
mixup=0
cutmix=1
label_smooth_eps=0.1
track=0
augment_speed=2
sequential_subdivisions=2
try_fix_nan=1
loss_scale=128
dynamic_minibatch=1
optimized_memory=1
workspace_size_limit_MB=1000
adversarial_lr=0.05
attention=1
max_chart_loss=4
ema_alpha=0.9998
policy=sgdr

[convolutional]
batch_normalize=1
filters=36
size=3
stride_x=1
stride_y=2
dilation=1
antialiasing=0
assisted_excitation=4000
pad=1
activation=mish
stopbackward=1
train_only_bn=1

[route]
layers=-1
groups=2
group_id=1

[shortcut]
from=-2
weights_type=none
weights_normalization=none
activation=swish

[yolo]
mask=0,1
anchors=10,14, 23,27, 37,58
classes=4
num=3
scale_x_y=1.05
iou_thresh=0.213
cls_normalizer=1.0
iou_normalizer=0.07
iou_loss=ciou
nms_kind=greedynms
beta_nms=0.6
max_delta=5
new_coords=1
counters_per_class=1,2,3,4
label_smooth_eps=0.1
"""
    sections = parse_cfg(text)
    assert [s.type for s in sections] == ["net", "convolutional", "route", "shortcut", "yolo"]
    net = network_from_text(text)
    assert net.out_shapes == [(36, 16, 32), (18, 16, 32), (18, 16, 32), (18, 16, 32)]


def test_unsupported_layers_parse_but_do_not_build():
    sections = parse_cfg(NET + "[rnn]\noutput=4\nhidden=4\n")
    assert sections[1].type == "rnn"
    with pytest.raises(UnsupportedModel, match=r"<cfg>:5: layer 0 \[rnn\]"):
        network_from_text(NET + "[rnn]\noutput=4\nhidden=4\n")


def test_read_cfg_errors_name_the_path(tmp_path):
    with pytest.raises(ModelFileError, match="missing.cfg: no such file"):
        read_cfg(tmp_path / "missing.cfg")
    with pytest.raises(ModelFileError, match="is a directory"):
        read_cfg(tmp_path)
    path = tmp_path / "bad.cfg"
    path.write_text(NET + "[conv]\nsizee=1\n")
    with pytest.raises(DarknetCfgError, match=f"^{path}:6: unknown key 'sizee' in \\[convolutional\\]$"):
        read_cfg(path)


def test_parsing_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys; from infertune.load.darknet import parse_cfg, read_cfg; "
            "parse_cfg('[net]\\n[conv]\\n'); print([m for m in ('torch', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

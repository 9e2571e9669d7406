"""Darknet `.cfg` lexer and parser (FORMAT.md §2). Pure Python: no torch, no numpy.

The lexer follows Darknet's `read_cfg`/`read_option` exactly, except that it also strips
`\\r` (as AlexeyAB does) and that it *rejects* what Darknet only warns about: unknown
sections and unknown keys are `DarknetCfgError`s naming the file and line.

Values keep Darknet's C semantics: integers are read with `atoi` (`1.5` -> 1, `3#x` -> 3,
garbage -> 0), floats with `atof`, lists are split at every comma.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ...errors import DarknetCfgError, ModelFileError

# Bracketed name -> canonical section type (pjreddie `string_to_layer_type`, plus AB's).
SECTION_ALIASES: dict[str, str] = {
    "net": "net", "network": "net",
    "conv": "convolutional", "convolutional": "convolutional",
    "deconv": "deconvolutional", "deconvolutional": "deconvolutional",
    "conn": "connected", "connected": "connected",
    "max": "maxpool", "maxpool": "maxpool",
    "avg": "avgpool", "avgpool": "avgpool",
    "soft": "softmax", "softmax": "softmax",
    "lrn": "normalization", "normalization": "normalization",
    "local_avg": "local_avgpool", "local_avgpool": "local_avgpool",
    "empty": "empty", "silence": "empty",
    **{name: name for name in (
        "local", "activation", "logistic", "l2norm", "rnn", "gru", "lstm", "crnn", "crop",
        "cost", "detection", "region", "yolo", "iseg", "reorg", "dropout", "batchnorm",
        "route", "upsample", "shortcut",
        # AlexeyAB only
        "reorg3d", "scale_channels", "sam", "Gaussian_yolo", "conv_lstm", "history",
        "implicit", "contrastive")},
}  # fmt: skip


def _keys(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Keys every layer section may carry (pjreddie and AB `parse_network_cfg`).
COMMON_KEYS = _keys("""dontload dontsave numload dontloadscales truth onlyforward stopbackward
    learning_rate smooth clip dont_update burnin_update train_only_bn""")

_NET_KEYS = _keys("""batch subdivisions width height channels inputs max_batches learning_rate
    momentum decay time_steps notruth random adam B1 B2 eps max_crop min_crop max_ratio
    min_ratio center clip angle aspect saturation exposure hue policy burn_in power step scale
    steps scales gamma seq_scales learning_rate_min sgdr_cycle sgdr_mult track augment_speed
    sequential_subdivisions try_fix_nan weights_reject_freq equidistant_point
    badlabels_rejection_percentage num_sigmas_reject_badlabels ema_alpha use_cuda_graph
    loss_scale dynamic_minibatch optimized_memory workspace_size_limit_MB flip blur
    gaussian_noise mixup cutmix mosaic letter_box mosaic_bound contrastive contrastive_jit_flip
    contrastive_color unsupervised label_smooth_eps resize_step attention adversarial_lr
    max_chart_loss show_receptive_field""")
_YOLO_KEYS = _keys("""classes num mask max show_details max_delta counters_per_class
    label_smooth_eps scale_x_y objectness_smooth new_coords iou_normalizer obj_normalizer
    cls_normalizer delta_normalizer iou_loss iou_thresh_kind beta_nms nms_kind jitter resize
    focal_loss ignore_thresh truth_thresh iou_thresh random track_history_size sim_thresh
    dets_for_track dets_for_show track_ciou_norm embedding_layer map anchors""")
_CONV_RNN = _keys("size stride dilation pad padding groups activation batch_normalize xnor shortcut")

# Section type -> keys its parse_* function reads (pjreddie `parse_*`, plus AlexeyAB's).
SECTION_KEYS: dict[str, frozenset[str]] = {
    "net": _NET_KEYS,
    "convolutional": _keys("""filters size stride stride_x stride_y dilation antialiasing pad
        padding groups activation assisted_excitation share_index batch_normalize cbn binary
        xnor bin_output sway rotate stretch stretch_sway flipped dot angle grad_centr reverse
        coordconv stream wait_stream"""),
    "deconvolutional": _keys("filters size stride activation batch_normalize pad padding"),
    "local": _keys("filters size stride pad activation"),
    "connected": _keys("output activation batch_normalize"),
    "maxpool": _keys("""stride stride_x stride_y size padding maxpool_depth out_channels
        antialiasing maxpool_zero_nonmax"""),
    "local_avgpool": _keys("stride stride_x stride_y size padding"),
    "avgpool": frozenset(),
    "softmax": _keys("groups temperature tree spatial noloss"),
    "dropout": _keys("probability dropblock dropblock_size_rel dropblock_size_abs"),
    "route": _keys("layers groups group_id stream wait_stream"),
    "shortcut": _keys("""from activation alpha beta weights_type weights_normalization
        weights_normalizion"""),
    "scale_channels": _keys("from scale_wh activation"),
    "sam": _keys("from activation"),
    "reorg": _keys("stride reverse flatten extra"),
    "reorg3d": _keys("stride reverse flatten extra"),
    "upsample": _keys("stride scale"),
    "crop": _keys("crop_height crop_width flip angle saturation exposure noadjust shift"),
    "cost": _keys("type scale ratio noobj thresh"),
    "activation": _keys("activation"),
    "logistic": frozenset(), "l2norm": frozenset(), "batchnorm": frozenset(),
    "empty": frozenset(),
    "normalization": _keys("alpha beta kappa size"),
    "region": _keys("""coords classes num max log sqrt softmax background focal_loss jitter
        resize rescore thresh classfix absolute random coord_scale object_scale noobject_scale
        mask_scale class_scale bias_match tree map anchors"""),
    "detection": _keys("""coords classes rescore num side softmax sqrt max coord_scale forced
        object_scale noobject_scale class_scale jitter resize random reorg"""),
    "yolo": _YOLO_KEYS,
    "Gaussian_yolo": _YOLO_KEYS | _keys("uc_normalizer yolo_point"),
    "iseg": _keys("classes ids"),
    "implicit": _keys("mean std filters atoms"),
    "contrastive": _keys("classes yolo_layer temperature cls_normalizer max_delta contrastive_neg_max"),
    "history": _keys("history_size"),
    "rnn": _keys("output hidden activation batch_normalize logistic shortcut"),
    "gru": _keys("output batch_normalize tanh"),
    "lstm": _keys("output batch_normalize"),
    "crnn": _CONV_RNN | _keys("output hidden output_filters hidden_filters"),
    "conv_lstm": _CONV_RNN | _keys("""output peephole bottleneck state_constrain lstm_activation
        time_normalizer"""),
}  # fmt: skip

_WHITESPACE = str.maketrans("", "", " \t\n\r\v\f")
_INT_PREFIX = re.compile(r"[+-]?\d+")
_FLOAT_PREFIX = re.compile(
    r"[+-]?(0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?\d+)?"
    r"|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|inf(inity)?|nan)", re.IGNORECASE)


# atoi is glibc's strtol: out-of-range values saturate at the C long's limits. Saturating
# also keeps int() away from digit strings longer than Python's int-conversion limit.
_LONG_MAX = 2**63 - 1


def atoi(text: str) -> int:
    """C `atoi` on an already stripped string: leading integer prefix, else 0; saturates at
    ±(2^63 − 1) as strtol does (the planner then refuses such sizes with a clear error)."""
    match = _INT_PREFIX.match(text)
    if not match:
        return 0
    token = match.group()
    digits = token.lstrip("+-").lstrip("0")
    if len(digits) > 19:  # beyond any int64: no int() of a possibly huge string
        return -_LONG_MAX - 1 if token.startswith("-") else _LONG_MAX
    return max(-_LONG_MAX - 1, min(_LONG_MAX, int(token)))


def atof(text: str) -> float:
    """C `atof` on an already stripped string: longest float prefix, else 0.0."""
    match = _FLOAT_PREFIX.match(text)
    if not match:
        return 0.0
    token = match.group()
    if "x" not in token.lower():
        return float(token)  # decimal overflow already gives ±inf, as strtod's HUGE_VAL
    try:
        return float.fromhex(token)
    except OverflowError:  # strtod returns ±HUGE_VAL (inf) for an out-of-range hex float
        return float("-inf") if token.startswith("-") else float("inf")


def cfg_error(path: str, line: int, message: str) -> DarknetCfgError:
    """A one-line DarknetCfgError `path:line: message` (its .path is set too)."""
    err = DarknetCfgError(f"{path}:{line}: {message}")
    err.path = str(path)
    return err


@dataclass(frozen=True)
class Section:
    """One `[section]` of a cfg.

    Attributes:
        type: canonical type without brackets (`[conv]` -> "convolutional", `[net]` -> "net").
        options: key -> value in file order, first occurrence only; a line without `=`
            stores None (Darknet: present but behaves as absent).
        line: 1-based line of the `[section]` header.
        index: layer index (0 = first section after [net]); -1 for the net section.
        path: the file name used in error messages.
        key_lines: key -> 1-based line where that (first) occurrence was written.
        header: the header as written, e.g. "[conv]".
    """

    type: str
    options: Mapping[str, str | None] = field(hash=False)
    line: int
    index: int
    path: str = field(default="<cfg>", compare=False)
    key_lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)
    header: str = field(default="", compare=False, repr=False)

    def has(self, key: str) -> bool:
        """True if `key` is given with a value (Darknet's `option_find` returns non-NULL)."""
        return self.options.get(key) is not None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        value = self.options.get(key)
        return default if value is None else value

    def get_int(self, key: str, default: int) -> int:
        """`option_find_int`: atoi of the value, or `default` if absent."""
        value = self.options.get(key)
        return default if value is None else atoi(value)

    def get_float(self, key: str, default: float) -> float:
        """`option_find_float`: atof of the value, or `default` if absent."""
        value = self.options.get(key)
        return default if value is None else atof(value)

    def get_int_list(self, key: str) -> list[int] | None:
        """Comma-separated ints (`layers=-1,-4`), each via atoi; None if absent."""
        value = self.options.get(key)
        return None if value is None else [atoi(part) for part in value.split(",")]

    def get_float_list(self, key: str) -> list[float] | None:
        value = self.options.get(key)
        return None if value is None else [atof(part) for part in value.split(",")]

    def line_of(self, key: str) -> int:
        """Line of `key` if written, else the section header's line."""
        return self.key_lines.get(key, self.line)

    def error(self, message: str, key: str | None = None) -> DarknetCfgError:
        """A DarknetCfgError at this section (or at `key`'s line) naming the layer."""
        where = f"[{self.type}]" if self.index < 0 else f"layer {self.index} [{self.type}]"
        line = self.line_of(key) if key else self.line
        return cfg_error(self.path, line, f"{where}: {message}")


@dataclass
class _Draft:
    type: str
    header: str
    line: int
    options: dict[str, str | None] = field(default_factory=dict)
    key_lines: dict[str, int] = field(default_factory=dict)


def _lex(text: str, path: str) -> list[_Draft]:
    """Splits cfg text into section drafts (FORMAT.md §2.1)."""
    drafts: list[_Draft] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.translate(_WHITESPACE)  # Darknet's strip() deletes every blank
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            name = line[1:-1] if line.endswith("]") else None
            canonical = SECTION_ALIASES.get(name) if name is not None else None
            if canonical is None:
                raise cfg_error(path, number, f"unknown section {line}")
            drafts.append(_Draft(canonical, line, number))
            continue
        if not drafts:
            raise cfg_error(path, number, f"option {line!r} before the first [section]")
        key, eq, value = line.partition("=")
        if eq and not value:
            raise cfg_error(path, number, f"empty value in {line!r} (write key=value)")
        _add_option(drafts[-1], key, value if eq else None, number, path)
    return drafts


def _add_option(draft: _Draft, key: str, value: str | None, number: int, path: str) -> None:
    known = SECTION_KEYS[draft.type] | (COMMON_KEYS if draft.type != "net" else frozenset())
    if key not in known:
        raise cfg_error(path, number, f"unknown key {key!r} in [{draft.type}]")
    if key not in draft.options:  # option_find scans from the front: the first one wins
        draft.options[key] = value
        draft.key_lines[key] = number


def parse_cfg(text: str, path: str = "<cfg>") -> list[Section]:
    """Parses cfg text into sections; the first is the [net] section (index -1).

    Args:
        text: the whole cfg file.
        path: the name used in error messages (`path:line: ...`).

    Raises:
        DarknetCfgError: grammar errors, unknown sections/keys, no [net] first.
    """
    path = str(path)
    drafts = _lex(text, path)
    if not drafts:
        raise cfg_error(path, 1, "no sections (a cfg starts with [net])")
    if drafts[0].type != "net":
        raise cfg_error(path, drafts[0].line,
                        f"first section must be [net] or [network], not {drafts[0].header}")
    sections = []
    for position, draft in enumerate(drafts):
        if position and draft.type == "net":
            raise cfg_error(path, draft.line, f"{draft.header} may only be the first section")
        sections.append(Section(draft.type, dict(draft.options), draft.line, position - 1,
                                path, dict(draft.key_lines), draft.header))
    return sections


def read_text(path: str | Path) -> str:
    """Reads a text file, raising ModelFileError (naming the path) if it cannot be read."""
    file = Path(path)
    if file.is_dir():
        raise ModelFileError("is a directory, not a file", path=file)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise ModelFileError("no such file", path=file) from None
    except OSError as exc:
        raise ModelFileError(f"cannot read: {exc.strerror or exc}", path=file) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # Darknet reads bytes; keep every byte as a char


def read_cfg(path: str | Path) -> list[Section]:
    """Reads and parses a cfg file (errors name the path as given)."""
    return parse_cfg(read_text(path), str(path))


__all__ = ["Section", "parse_cfg", "read_cfg", "atoi", "atof", "cfg_error", "SECTION_ALIASES",
           "SECTION_KEYS", "COMMON_KEYS"]

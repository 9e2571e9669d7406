"""Allocation bounds for cfgs: a cfg is untrusted input, and one line (`filters=1000000000`)
would otherwise make the importer try to allocate hundreds of GiB. `plan_network` checks
every layer against these bounds while it walks the shape chain, before any tensor exists,
and refuses the cfg with a DarknetCfgError naming the layer's line.

The bounds are far above any real classifier or detector backbone, so they only stop
cfgs that could never run: Darknet-19 has 20.8 M parameters and its largest activation
(448×448 input) is 6.4 M values; VGG-16, the largest common classifier, has 138 M
parameters; YOLOv4 at 1024×1024 has activations of 33.5 M values.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .build import LayerPlan

# Parameters of the whole network: 2^30 float32 values = 4 GiB (about 8× VGG-16).
MAX_PARAMS = 2**30
# Values of one layer's output (or padded input) for one image: 2^28 float32 = 1 GiB.
MAX_ACTIVATION_VALUES = 2**28
# [normalization] size: its forward sums `size` shifted slices, one Python step each, so
# the window length bounds run time, not only memory (Darknet's LRN cfgs use size=5).
MAX_LRN_SIZE = 1024


def _numel(shape) -> int:
    return shape if isinstance(shape, int) else shape[0] * shape[1] * shape[2]


def layer_params(plan: "LayerPlan") -> int:
    """Parameter values the layer's module allocates (weights, bias, batch-norm statistics),
    whether or not its .weights entry is loaded (`dontload`, `numload` do not shrink them)."""
    args = plan.args
    if plan.kind == "convolutional":
        per_filter = (args["c_in"] // args["groups"]) * args["size"] ** 2
        return args["filters"] * (per_filter + 4)
    if plan.kind == "deconvolutional":
        return args["filters"] * (args["c_in"] * args["size"] ** 2 + 4)
    if plan.kind == "connected":
        return args["output"] * (args["inputs"] + 4)
    if plan.kind == "local":
        c, _, _ = plan.in_shape
        _, out_h, out_w = plan.out_shape
        return args["filters"] * out_h * out_w * (c * args["size"] ** 2 + 1)
    if plan.kind == "batchnorm":
        return 3 * args["channels"]
    return 0


def _work_values(plan: "LayerPlan") -> int:
    """The largest temporary the layer's forward makes, in values per image."""
    out = _numel(plan.out_shape)
    if plan.kind == "maxpool":  # padded before pooling
        c, h, w = plan.in_shape
        pad = plan.args["padding"]
        return max(out, c * (h + pad) * (w + pad))
    if plan.kind == "normalization":  # squares padded along channels by size - 1
        c, h, w = plan.in_shape
        return max(out, (c + plan.args["size"]) * h * w)
    return out


def _approx(n: int) -> str:
    # ints from huge cfg values can exceed a float's range; write those as a power of ten
    return f"{n:.3g}" if n < 10**300 else f"~1e{len(str(n)) - 1}"


def check_layer(plan: "LayerPlan", params_so_far: int) -> int:
    """Refuses a layer beyond the bounds; returns the parameters counted so far, this one included.

    Raises:
        DarknetCfgError: the layer's parameters, the network's, or the layer's activation
            exceed the bounds above (the message gives the number and the bound).
    """
    sec = plan.section
    if plan.kind == "normalization" and plan.args["size"] > MAX_LRN_SIZE:
        raise sec.error(f"size={plan.args['size']} exceeds the supported maximum "
                        f"{MAX_LRN_SIZE}", key="size")
    params = params_so_far + layer_params(plan)
    if params > MAX_PARAMS:
        raise sec.error(f"the network would have {_approx(params)} parameters by this layer, "
                        f"more than the bound of {MAX_PARAMS:.3g} (4 GiB of float32); refused "
                        "before allocating anything")
    values = _work_values(plan)
    if values > MAX_ACTIVATION_VALUES:
        raise sec.error(f"this layer's output would hold {_approx(values)} values per image, more "
                        f"than the bound of {MAX_ACTIVATION_VALUES:.3g} (1 GiB of float32); "
                        "refused before allocating anything")
    return params


__all__ = ["MAX_PARAMS", "MAX_ACTIVATION_VALUES", "MAX_LRN_SIZE", "layer_params", "check_layer"]

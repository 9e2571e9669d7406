"""`mixed_precision`: static INT8 with some layers kept float.

`keep=K` keeps the K layers that are most sensitive to quantization (ranked by
`sensitivity.analyze` on the calibration data: the output error with each layer alone
quantized; with `head_first=true` the head layers feeding the outputs come first, which is
how `optimize` keeps a detector's head in float, K chosen under the mAP budget; with
`rank=cost` the K with the most accuracy per measured millisecond, `_layer_cost`);
`keep=name1+name2` keeps the named layers. Names are node names of the
pre-processed ONNX graph, as `infertune sensitivity` prints them. `optimize` picks K.

The engines do the excluding: ONNX Runtime's `nodes_to_exclude` (engine ort) and NNCF's
`ignored_scope` (engine nncf; the ONNX names are mapped to the OpenVINO ops converted from
them). Everything else is int8_static with the same options.
"""
from __future__ import annotations

import difflib
import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, Mapping

from ..errors import ConfigError
from ..types import ModelHandle
from .base import PassContext, PassResult, register_pass
from ._checks import check_literals
from .int8_static import Int8StaticConfig, Method, quantize


@dataclass(frozen=True)
class MixedPrecisionConfig:
    """Which layers stay float, and how the rest is quantized.

    Attributes:
        keep: ("K",) for the K most sensitive layers, or layer names (`keep=a+b` on the CLI).
        engine: ort (ONNX Runtime, QDQ) or nncf (NNCF, OpenVINO IR).
        method, per_channel, activations, preset, samples, softmax, reduce_range: as in
            int8_static.
        eval_samples: samples the sensitivity ranking measures output error on (keep=K).
        head_first: keep=K takes the model's head layers first — the last HEAD_DEPTH
            weighted layers before each graph output (a detector's: the convs feeding each
            [yolo]/[region] output), most sensitive first — then the rest by sensitivity.
            INT8 hurts a detector's head most (its raw maps carry boxes and confidences).
        rank: how keep=K ranks the layers: sensitivity (the K most sensitive) or cost (the
            most sensitivity per millisecond that keeping the layer float costs, measured
            per layer on `cost_runtime` in the float and the fully quantized model, a cost
            under the noise floor counted as the floor: `_layer_cost`).
        cost_runtime: the runtime rank=cost measures on (the INT8 candidate's runtime);
            engine nncf builds an OpenVINO IR, so it needs openvino.
    """

    keep: tuple[str, ...] = ("1",)
    engine: Literal["ort", "nncf"] = "ort"
    method: Method = "minmax"
    per_channel: bool = True
    activations: Literal["int8", "uint8"] = "int8"
    preset: Literal["performance", "mixed"] = "performance"
    samples: int = 128
    eval_samples: int = 64
    head_first: bool = False
    softmax: Literal["float", "int8"] = "float"
    reduce_range: Literal["auto", "on", "off"] = "auto"
    rank: Literal["sensitivity", "cost"] = "sensitivity"
    cost_runtime: Literal["onnxruntime", "openvino"] = "onnxruntime"

    def __post_init__(self) -> None:
        if isinstance(self.keep, (str, int)):
            object.__setattr__(self, "keep", (str(self.keep),))
        object.__setattr__(self, "keep", tuple(str(k) for k in self.keep))
        check_literals(self)
        if not self.keep:
            raise ValueError("keep needs a count K or layer names")
        if any(k.isdigit() for k in self.keep) and len(self.keep) > 1:
            raise ValueError(f"keep is a count K or layer names, not both: {'+'.join(self.keep)}")
        if self.eval_samples < 1:
            raise ValueError("eval_samples must be at least 1")
        if self.rank == "cost" and self.engine == "nncf" and self.cost_runtime != "openvino":
            raise ValueError("rank=cost with engine nncf measures on openvino (NNCF's IR "
                             "runs there only): set cost_runtime=openvino")
        self.static()  # the quantization options are validated as int8_static's

    @property
    def count(self) -> int | None:
        """K when keep is a count, else None."""
        return int(self.keep[0]) if self.keep[0].isdigit() else None

    def static(self) -> Int8StaticConfig:
        return Int8StaticConfig(method=self.method, per_channel=self.per_channel,
                                engine=self.engine, activations=self.activations,
                                preset=self.preset, samples=self.samples,
                                softmax=self.softmax, reduce_range=self.reduce_range)


@register_pass("mixed_precision", config=MixedPrecisionConfig, accepts=("torch", "onnx"),
               needs_data=True,
               description="static INT8 keeping the K most sensitive (or the named) layers "
                           "float (ORT nodes_to_exclude, NNCF ignored_scope)")
def apply(model: ModelHandle, config: MixedPrecisionConfig, ctx: PassContext) -> PassResult:
    """Quantizes all but the kept layers; the input is untouched."""
    from . import _ort_quant as q
    from .int8_static import as_onnx

    source, _ = as_onnx(model, ctx)
    prepped, _prep = q.prepare(source, ctx)
    layers = [l["layer"] for l in q.weighted_layers(prepped)]
    keep, ranking, cost = kept_layers(source, config, ctx, layers)
    if len(keep) >= len(layers):
        return PassResult(model, False, f"keeping {len(keep)} of {len(layers)} layers float "
                                        "leaves nothing to quantize", {"kept": keep})
    result = quantize(source, config.static(), ctx, keep)
    details = {**result.details, "keep": list(config.keep), "exported_to_onnx": source is not model,
               KEPT_KEY: [k["layer"] for k in keep]}
    if ranking is not None:
        details["sensitivity"] = [{k: r[k] for k in ("rank", "layer", "sqnr_db", "top1_agreement",
                                                     "head") if k in r}
                                  for r in ranking["layers"]]
    if cost is not None:
        details["cost_ranking"] = cost
    return PassResult(result.model if result.applied else model, result.applied, result.reason,
                      details)


KEPT_KEY = "kept_by_choice"  # the layers this pass chose to keep float (sensitivity or names)


def kept_float_layers(details: Mapping[str, Any]) -> list[str]:
    """The layers a mixed_precision step kept in float by choice, in the order chosen, from
    its report's details (not those every INT8 engine leaves float anyway)."""
    return [str(name) for name in details.get(KEPT_KEY) or []]


def kept_layers(source: ModelHandle, config: MixedPrecisionConfig, ctx: PassContext,
                layers: list[str]) -> tuple[list[dict[str, str]], dict[str, Any] | None,
                                            dict[str, Any] | None]:
    """The kept layers with reasons, the sensitivity ranking when one was computed, and the
    cost ranking (rank=cost; `_layer_cost.cost_ranking`)."""
    if config.count is None:
        check_names(config.keep, layers)
        return [{"layer": n, "reason": "named in keep"} for n in config.keep], None, None
    if config.count == 0:
        return [], None, None
    from .sensitivity import SensitivityConfig, analyze, most_sensitive

    # the ranking is ONNX Runtime's (sensitivity.py); NNCF's mean_minmax has no ORT
    # counterpart, so its ranking uses min-max ranges
    method = "minmax" if config.method == "mean_minmax" else config.method
    sens = SensitivityConfig(method=method, per_channel=config.per_channel,
                             activations=config.activations, samples=config.samples,
                             eval_samples=config.eval_samples)
    from . import _ort_quant as q
    from . import _result_cache

    prepped = q.prepare(source, ctx)[0]
    ranking = _result_cache.cached(
        ctx, "sensitivity",
        {"model": prepped.stem, "data": _result_cache.data_digest(ctx.calibration.x),
         "config": dataclasses.asdict(sens)},
        lambda: analyze(source, ctx, sens))
    head = None
    if config.head_first:
        head = head_layers(prepped)
        ranking = {**ranking, "layers": head_first(ranking["layers"], head)}
    if config.rank == "cost":
        from ._layer_cost import cost_ranking, most_valuable

        cost = cost_ranking(source, config, ctx, ranking["layers"], layers)
        if "layers" in cost:  # else it says why not, and the sensitivity ranking decides
            rows = cost["layers"] if head is None else head_first(cost["layers"], head)
            return most_valuable(rows, config.count), ranking, {**cost, "layers": rows}
        return most_sensitive(ranking, config.count), ranking, cost
    return most_sensitive(ranking, config.count), ranking, None


HEAD_DEPTH = 2  # weighted layers per output path counted as the head (1×1 output conv + one)


def head_layers(path, depth: int = HEAD_DEPTH) -> list[str]:
    """The weighted layers (Conv/Gemm/MatMul) nearest each graph output: walking back from
    every output through any op, the first `depth` weighted layers met on each path."""
    import onnx

    from ._ort_quant import WEIGHTED_OPS

    graph = onnx.load(str(path), load_external_data=False).graph
    producer = {out: node for node in graph.node for out in node.output}
    found: list[str] = []
    stack = [(o.name, 0) for o in graph.output]
    seen: set[tuple[str, int]] = set()
    while stack:
        tensor, met = stack.pop()
        node = producer.get(tensor)
        if node is None or (tensor, met) in seen:
            continue
        seen.add((tensor, met))
        if node.op_type in WEIGHTED_OPS and node.name:
            if node.name not in found:
                found.append(node.name)
            met += 1
            if met >= depth:
                continue
        stack += [(name, met) for name in node.input if name]
    return found


def head_first(rows: list[dict[str, Any]], head: list[str]) -> list[dict[str, Any]]:
    """A sensitivity ranking reordered: the head layers (by their sensitivity rank), then
    the others; `rank` renumbered, each row marked `head`."""
    inside = [r for r in rows if r["layer"] in head]
    outside = [r for r in rows if r["layer"] not in head]
    return [{**r, "rank": i + 1, "head": r["layer"] in head}
            for i, r in enumerate(inside + outside)]


def check_names(names: tuple[str, ...], layers: list[str]) -> None:
    """ConfigError for a name that is not a quantizable layer (with the closest one)."""
    for name in names:
        if name not in layers:
            close = difflib.get_close_matches(name, layers, n=1)
            hint = (f"; did you mean {close[0]!r}?" if close else
                    f"; layers: {', '.join(layers[:8])}{' ...' if len(layers) > 8 else ''}")
            raise ConfigError(f"pass mixed_precision: {name!r} is not a quantizable layer of "
                              f"this model{hint} (names as `infertune sensitivity` prints them)")

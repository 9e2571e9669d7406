"""`infertune sensitivity`: loads the model and data, ranks the quantizable layers by the
output error each causes quantized alone (INT8, ONNX Runtime; the analysis itself is
`passes.sensitivity.analyze`, which `mixed_precision` uses too), and writes the ranking as
JSON atomically when asked."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from .._atomic import write_text
from ..data import load_dataset
from ..errors import ConfigError
from ..load import LoadOptions, load_model
from ..passes import PassContext
from ..passes.sensitivity import SensitivityConfig, analyze
from ..types import ModelHandle
from .evaluate import json_safe
from .options import SensitivityOptions


def sensitivity_config(options: SensitivityOptions) -> SensitivityConfig:
    """The analysis's configuration; a bad method is a user error."""
    try:
        return SensitivityConfig(method=options.method, per_channel=options.per_channel)
    except ValueError as exc:
        raise ConfigError(f"sensitivity: {exc}") from None


def run_sensitivity(model: str | ModelHandle, options: SensitivityOptions,
                    load: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """The ranking as JSON-ready data (non-finite SQNRs as null plus `<key>_nonfinite`, as
    `infertune eval` writes them); also written to `options.out` when given."""
    config = sensitivity_config(options)
    limit = options.limit
    if limit is not None and limit < 2:
        raise ConfigError(f"limit must be at least 2 (calibration and evaluation), not {limit}")
    handle = load_model(model, **vars(load))
    pre = options.preprocess or handle.meta.get("preprocess") or "darknet"
    ds = load_dataset(options.data, input_shape=handle.input_spec.chw, preprocess=pre,
                      seed=load.seed, limit=limit or config.samples + config.eval_samples)
    with tempfile.TemporaryDirectory(prefix="infertune-sensitivity-") as workdir:
        ctx = PassContext(Path(workdir), calibration=ds, threads=options.threads, seed=load.seed)
        result = analyze(handle, ctx, config)
    result["data"].update(source=options.data, description=ds.description)
    result = json_safe({"source": handle.source, **result})
    if options.out:
        write_text(options.out, json.dumps(result, indent=2) + "\n")
        result["out"] = str(options.out)
    return result

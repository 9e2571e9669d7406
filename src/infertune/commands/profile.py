"""`infertune profile`: static facts about a model (params, MACs, bytes and intensity per
layer and in total), optionally placed against the machine's measured limits and timed per
layer on one runtime."""
from __future__ import annotations

from typing import Any

from ..load import LoadOptions, load_model
from ..measure.limits import machine_limits, roofline
from ..profile import profile_model
from ..runtimes.layer_time import profile_layer_time
from ..types import ModelHandle
from .options import ProfileOptions


def run_profile(model: str | ModelHandle, options: ProfileOptions = ProfileOptions(),
                load: LoadOptions = LoadOptions()) -> dict[str, Any]:
    """The static profile; with `options.limits` also the machine's measured FP32/INT8 peaks
    and bandwidth at `options.threads` (cached; `refresh_limits` measures again) and where
    the model sits against them (key "limits"); with `options.layer_time` (a runtime name)
    the measured time per layer of that runtime's artifact (key "layer_time")."""
    handle = load_model(model, **vars(load))
    result = {"source": handle.source, "format": handle.format,
              **profile_model(handle, input_size=load.input_size)}
    if options.limits:
        measured = machine_limits(options.threads, refresh=options.refresh_limits)
        result["limits"] = {"machine": measured,
                            **roofline(result["macs"], result["mac_bytes"], measured)}
    if options.layer_time:
        result["layer_time"] = profile_layer_time(handle, options.layer_time,
                                                  threads=options.threads,
                                                  input_size=load.input_size)
    return result

"""The pick, exported: RUN_DIR/best/ holds its artifact in its runtime's native format, a
model_card.json (recipe, every metric with its uncertainty, machine, versions, how to load
it, the runtime configuration it was measured with) and a short run.py that opens the
artifact with that configuration; `triton()` turns a run's pick into a Triton Inference
Server model repository, with the settings of the chosen configuration that Triton's backend
can take (and the list of those it cannot). Nothing is exported when nothing met the
budget."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from .._atomic import atomic_path, write_text
from ..errors import ConfigError
from ..runtimes import RUNTIMES
from ..runtimes.base import TritonSettings
from .space import measured_options


def export_best(s, report: dict[str, Any]) -> dict[str, Any] | None:
    pick = report.get("pick")
    if pick is None:
        return None
    rec = next(c for c in report["candidates"] if c["id"] == pick)
    best = s.run_dir / "best"
    cand = s.records[pick]
    src = Path(cand.artifact)
    files = _copy_artifact(src, best)
    main = Path(files[-1]).name
    options = pick_options(cand, s.threads)
    card = model_card(report, rec, main, s, options=options, artifact=str(src))
    write_text(best / "model_card.json", json.dumps(card, indent=1, default=str))
    write_text(best / "run.py", run_script(rec["runtime"], main, report, s, options=options,
                                           artifact=str(src),
                                           weight_bits=ort_int8_weight_bits(rec)))
    return {"dir": str(best), "files": [str(best / Path(f).name) for f in files] +
            [str(best / "model_card.json"), str(best / "run.py")], "runtime": rec["runtime"],
            "artifact": str(best / main)}


def _copy_artifact(src: Path, dest_dir: Path) -> list[str]:
    """The artifact and its companions (.bin of an IR, ONNX external data), main file last."""
    companions = [p for p in src.parent.iterdir() if p != src and (
        p.name.startswith(src.name + ".") or (src.suffix == ".xml" and p == src.with_suffix(".bin")))]
    out = []
    for path in [*companions, src]:
        if path.is_dir():
            continue
        with atomic_path(dest_dir / path.name) as tmp:
            shutil.copyfile(path, tmp)
        out.append(str(dest_dir / path.name))
    return out


def pick_options(cand, threads: int) -> dict[str, Any]:
    """The opener options the pick was measured with: its runtime's, its configuration's
    over them, and the thread count (the run's, or the configuration's own)."""
    chosen = dict(cand.plan.runtime_options)
    return {**measured_options(cand.runtime, chosen),
            "threads": int(chosen.get("threads") or threads)}


def ort_int8_weight_bits(rec: dict[str, Any]) -> int | None:
    """The weight bits of the pick's ONNX Runtime INT8 (what its quantizing pass reported),
    for a pick that runs on ONNX Runtime's CPU kernels; None for any other pick. Only
    there is saturation measured (machine.int8_weight_warning): OpenVINO's kernels are
    its own and are not claimed either way."""
    if rec.get("runtime") != "onnxruntime":
        return None
    bits = [p["weight_bits"] for p in rec.get("passes") or []
            if p.get("applied") and p.get("weight_bits")]
    return max(bits) if bits else None


def model_card(report: dict[str, Any], rec: dict[str, Any], main: str, s, *,
               options: dict[str, Any] | None = None,
               artifact: str | None = None) -> dict[str, Any]:
    keys = ("latency_ms", "throughput_ips", "size_mb", "accuracy", "fidelity", "drop",
            "detection", "peak_rss_mb", "cold_start_ms", "speedup", "speedup_range",
            "speedup_method", "compression_ratio", "params", "macs", "energy_j_per_image", "energy_note")
    base = next(c for c in report["candidates"] if c["id"] == report["baseline_id"])
    return {"card_version": 1, "source": report["model"]["source"], "model": report["model"],
            "candidate": rec["id"], "label": rec["label"], "stage": rec["stage"],
            "recipe": rec["recipe"], "runtime": rec["runtime"],
            # What ran: as the runtime reports it where it does (ran_precision_note says how),
            # else what the recipe asked for and every step applied.
            "precision": rec.get("precision"), "requested_precision": rec.get("requested_precision"),
            "precision_note": rec.get("ran_precision_note"),
            # 8: run.py warns on an x86 CPU without VNNI/AMX, where these weights saturate
            "int8_weight_bits": ort_int8_weight_bits(rec),
            "artifact": main, "metrics": {k: rec.get(k) for k in keys},
            "baseline_metrics": {k: base.get(k) for k in keys},
            "budget": report["budget"], "data": report["data"], "timing": report["timing"],
            "machine": report["machine"], "versions": report["machine"].get("versions")
            or report["machine"].get("libraries"),
            "load": {"runtime": rec["runtime"], "file": main,
                     "input": report["model"]["input"],
                     "preprocess": s.data_info.get("preprocess"),
                     # the configuration the configured stage chose ({}: the runtime's
                     # defaults), and the settings run.py opens the artifact with
                     "runtime_options": rec.get("runtime_options") or {},
                     "options": options or {},
                     "config": deploy_config(rec["runtime"], options or {}, artifact),
                     "example": "python run.py IMAGE"}}


def deploy_config(runtime: str, options: dict[str, Any], artifact: str | None) -> dict[str, Any]:
    found = RUNTIMES.find(runtime)
    return found.deploy_config(options, artifact) if found is not None else {}


def run_script(runtime: str, main: str, report: dict[str, Any], s, *,
               options: dict[str, Any] | None = None, artifact: str | None = None,
               weight_bits: int | None = None) -> str:
    """best/run.py: the runtime's loader (ONNX Runtime's where it has none) with the
    settings the pick was measured with (`options`; None: the runtime's batch-1 defaults).
    With `weight_bits` (an ONNX Runtime INT8 pick) it first checks that this CPU's INT8
    kernels do not saturate those weights, and warns on stderr where they do."""
    module, loader = _loader(runtime)
    found = RUNTIMES.find(runtime)
    if options is None:
        options = found.options(1) if found is not None else {}
    config = repr(deploy_config(runtime, options, artifact))
    c, h, w = s.handle.input_spec.chw
    return (f'"""The pick of an infertune run ({report["model"]["source"]}): {runtime}.\n'
            f'Usage: python run.py IMAGE   (needs {module}; preprocessing as infertune\'s '
            f'"{s.data_info.get("preprocess")}" preset, through infertune)."""\n'
            "import sys\nfrom pathlib import Path\n\nimport numpy as np\n"
            "from infertune.data.preprocess import apply_preprocess, resolve_preprocess\n"
            "from infertune.data.sources import decode_image\n"
            + _weight_check(weight_bits) +
            f"\nMODEL = str(Path(__file__).with_name({main!r}))\n"
            + loader.replace("{CONFIG}", config) +
            f"pixels = decode_image(Path(sys.argv[1]), {c})\n"
            f"x = apply_preprocess(pixels, resolve_preprocess({s.data_info.get('preprocess')!r}),"
            f" ({h}, {w}))[None].astype(np.float32)\n"
            "scores = np.asarray(predict(x)).reshape(1, -1)\n"
            "print('class', int(scores.argmax()), 'score', float(scores.max()))\n")


def _weight_check(weight_bits: int | None) -> str:
    """run.py's check of the INT8 weights against this CPU (empty: nothing to check)."""
    if not weight_bits:
        return ""
    return ("from infertune.machine import int8_weight_warning\n\n"
            f"WARNING = int8_weight_warning({int(weight_bits)})\n"
            "if WARNING:\n    print(f'warning: {WARNING}', file=sys.stderr)\n")


def _loader(runtime: str) -> tuple[str, str]:
    """(what it needs, code) of the runtime's run.py loader; ONNX Runtime's where it has none."""
    found = RUNTIMES.find(runtime)
    loader = (found.loader if found is not None else None) or RUNTIMES.get("onnxruntime").loader
    return loader.needs, loader.code


# ---------------------------------------------------------------------------- Triton
MAX_BATCH = 8


def triton(run_dir: str | Path, out: str | Path, name: str | None = None) -> dict[str, Any]:
    """Writes a Triton model repository (OUT/NAME/config.pbtxt, OUT/NAME/1/model.*) for a
    run's pick; refuses runtimes Triton has no backend for, naming the ones it has."""
    run_dir, out = Path(run_dir), Path(out)
    card_path = run_dir / "best" / "model_card.json"
    if not card_path.is_file():
        raise ConfigError(f"{run_dir}: no exported pick (best/model_card.json); run optimize "
                          "first, or the run met no budget")
    card = json.loads(card_path.read_text())
    runtime = card["runtime"]
    backends = RUNTIMES.triton_backends()
    if runtime not in backends:
        raise ConfigError(f"{run_dir}: the pick runs on {runtime}, which has no Triton "
                          f"backend; Triton serves {', '.join(backends)} picks "
                          "(rerun optimize with --runtimes onnxruntime,openvino)")
    name = name or _triton_name(card["source"])
    backend = backends[runtime]
    kind, value, filename = backend.key, backend.value, backend.filename
    version = out / name / "1"
    src = run_dir / "best" / card["artifact"]
    if runtime == "openvino":
        _copy_as(src.with_suffix(".bin"), version / "model.bin")
    for extra in src.parent.glob(src.name + ".*"):
        _copy_as(extra, version / extra.name)
    _copy_as(src, version / filename)
    inp, outs = _io(runtime, version / filename, card)
    device = "KIND_GPU" if RUNTIMES.get(runtime).needs_gpu else "KIND_CPU"
    chosen = (card.get("load") or {}).get("runtime_options") or {}
    settings = RUNTIMES.get(runtime).triton_settings(chosen)
    write_text(out / name / "config.pbtxt",
               config_pbtxt(name, kind, value, inp, outs, device, settings))
    return {"repository": str(out), "model": name, "backend": value,
            "runtime_options": chosen, "not_set": list(settings.not_set),
            "not_set_note": (f"the pick was measured with {', '.join(settings.not_set)}, which "
                             f"Triton's {value} backend cannot set: the served model runs "
                             "without it") if settings.not_set else None,
            "files": sorted(str(p) for p in (out / name).rglob("*") if p.is_file())}


def _triton_name(source: str) -> str:
    stem = Path(source.split(":")[0]).stem or "model"
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem)[:60]


def _copy_as(src: Path, dest: Path) -> None:
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


def _io(runtime: str, path: Path, card: dict[str, Any]) -> tuple[dict, list[dict]]:
    """(input, outputs) names and per-sample dims, read from the artifact itself."""
    if runtime == "onnxruntime":
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        inits = {i.name for i in graph.initializer}
        ins = [i for i in graph.input if i.name not in inits]
        return _onnx_io(ins[0]), [_onnx_io(o) for o in graph.output]
    if runtime == "openvino":
        import openvino as ov

        model = ov.Core().read_model(str(path))
        def io(port):
            dims = [int(d.get_length()) if d.is_static else -1 for d in port.get_partial_shape()]
            return {"name": port.get_any_name(), "dims": dims[1:]}
        return io(model.inputs[0]), [io(o) for o in model.outputs]
    shape = card["load"]["input"]["shape"]
    return {"name": "INPUT__0", "dims": [int(d) for d in shape[1:]]}, \
        [{"name": "OUTPUT__0", "dims": [-1]}]


def _onnx_io(value_info) -> dict[str, Any]:
    dims = [d.dim_value if d.HasField("dim_value") else -1
            for d in value_info.type.tensor_type.shape.dim]
    return {"name": value_info.name, "dims": dims[1:]}


def config_pbtxt(name: str, kind: str, value: str, inp: dict, outs: list[dict],
                 device: str = "KIND_CPU", settings: TritonSettings | None = None) -> str:
    """Triton's config.pbtxt; `device` is the instance group's kind (KIND_GPU for a runtime
    that `needs_gpu`: a TensorRT plan runs on the GPU it was built for); `settings` the
    chosen runtime configuration as the backend takes it (parameters, other blocks)."""
    def tensor(t: dict) -> str:
        dims = ", ".join(str(d) for d in t["dims"]) or "1"
        return f'  {{\n    name: "{t["name"]}"\n    data_type: TYPE_FP32\n    dims: [ {dims} ]\n  }}'
    settings = settings or TritonSettings()
    extra = "".join(f"{block}\n" for block in settings.blocks) + "".join(
        f'parameters {{ key: "{k}" value: {{ string_value: "{v}" }} }}\n'
        for k, v in settings.parameters.items())
    return (f'name: "{name}"\n{kind}: "{value}"\nmax_batch_size: {MAX_BATCH}\n'
            f"input [\n{tensor(inp)}\n]\noutput [\n" + ",\n".join(tensor(o) for o in outs) +
            f"\n]\ninstance_group [\n  {{\n    count: 1\n    kind: {device}\n  }}\n]\n"
            "dynamic_batching { }\n" + extra)

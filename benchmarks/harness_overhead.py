"""How much the harness adds to a runtime's own call time (SPEC target: under 1%).

Two estimates on a small conv net under ONNX Runtime (CPU), in one process:

1. no-op probe: the timing loop around a no-op callable costs `noop_p50_us` per call; as a
   fraction of ORT's p50 call time that is the overhead every latency sample carries.
2. loop vs bulk: the same ORT session timed call by call (the harness's loop) and as one
   block of calls (one clock pair for all), in adjacent alternating blocks; the median
   difference per call, per round, as a fraction of the call. It is noisier (a difference of
   two nearly equal numbers; it can come out negative) but it measures the overhead on the
   real call, caches and all.

Usage: python benchmarks/harness_overhead.py [--rounds 5] [--seconds 1.0] [--size 64]
Writes benchmarks/results/harness-overhead-<hostname>.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from infertune import _atomic
from infertune.measure import SessionFactory, TimingConfig, stats, timing
from infertune.measure.fingerprint import fingerprint
from infertune.measure.rounds import default_threads

RESULTS = Path(__file__).resolve().parent / "results"


def small_convnet(path: Path, size: int) -> Path:
    """Conv3x3(3->16)+Relu, Conv3x3/2(16->32)+Relu, GlobalAveragePool, Flatten, Gemm(32->10)."""
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array((rng.standard_normal(shape) * 0.1).astype(np.float32), name)

    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1],
                              strides=[2, 2]),
             helper.make_node("Relu", ["c2"], ["r2"]),
             helper.make_node("GlobalAveragePool", ["r2"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "w3", "b3"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "small_convnet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])],
        initializer=[init("w1", 16, 3, 3, 3), init("b1", 16), init("w2", 32, 16, 3, 3),
                     init("b2", 32), init("w3", 10, 32), init("b3", 10)])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def paired_blocks(run, x, calls: int, pairs: int) -> dict[str, float]:
    """Loop-timed and bulk-timed blocks of `calls` calls, alternating, `pairs` times.

    Adjacent blocks see the same machine state, so their difference is the harness's cost,
    not drift; the order alternates so that neither always runs second (warmer caches).
    Medians of the pairs keep one disturbed block from dominating.
    """
    cfg = TimingConfig(warmup=0, min_runs=calls, min_seconds=0.0, max_runs=calls)
    diffs, bulks, p50s = [], [], []
    for i in range(pairs):
        if i % 2:
            bulk = timing.time_bulk(run, x, calls)
            samples = timing.time_calls(run, x, cfg)
        else:
            samples = timing.time_calls(run, x, cfg)
            bulk = timing.time_bulk(run, x, calls)
        diffs.append(stats.mean(samples) - bulk)
        bulks.append(bulk)
        p50s.append(stats.percentile(samples, 50))
    return {"overhead_us": stats.percentile(diffs, 50) / 1e3,
            "bulk_mean_us": stats.percentile(bulks, 50) / 1e3,
            "p50_us": stats.percentile(p50s, 50) / 1e3}


def measure_overhead(model: Path, rounds: int, seconds: float, threads: int) -> dict:
    session = SessionFactory("onnxruntime", str(model)).open(threads=threads)
    x = np.random.default_rng(1).standard_normal((1, 3, *_hw(model))).astype(np.float32)
    timing.time_calls(session.run, x, TimingConfig(warmup=50, min_runs=1, min_seconds=0.0))
    # Blocks of ~20 ms: long enough to dwarf the clock reads, short enough to stay adjacent.
    calls = max(10, int(0.02e9 / timing.time_bulk(session.run, x, 20)))
    pairs = max(2, int(seconds / 0.04))
    per_round, probes = [], []
    for _ in range(rounds):  # interleaved: probe and ORT see the same machine state
        probes.append(timing.overhead_probe()["p50_us"])
        per_round.append(paired_blocks(session.run, x, calls, pairs))
    session.close()
    ort_p50 = stats.percentile([r["p50_us"] for r in per_round], 50)
    noop = stats.percentile(probes, 50)
    rel = [r["overhead_us"] / r["bulk_mean_us"] * 100 for r in per_round]
    return {"ort_call_p50_us": ort_p50, "noop_p50_us": noop,
            "noop_overhead_pct": noop / ort_p50 * 100,
            "loop_vs_bulk_overhead_pct": stats.ratio_summary(rel), "rounds": per_round,
            "block_calls": calls, "pairs_per_round": pairs, "threads": threads}


def _hw(model: Path) -> tuple[int, int]:
    dims = onnx.load(model).graph.input[0].type.tensor_type.shape.dim
    return int(dims[2].dim_value), int(dims[3].dim_value)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0, help="min seconds per timed loop")
    ap.add_argument("--size", type=int, default=64, help="input height and width")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    load_before = os.getloadavg()  # so a reader can tell a busy machine's figures apart
    with tempfile.TemporaryDirectory() as tmp:
        model = small_convnet(Path(tmp) / "small_convnet.onnx", args.size)
        out = measure_overhead(model, args.rounds, args.seconds,
                               args.threads or default_threads())
    out.update(model=f"small_convnet 1x3x{args.size}x{args.size}", fingerprint=fingerprint(),
               load_avg_1min={"before": load_before[0], "after": os.getloadavg()[0]})
    dest = args.out or RESULTS / f"harness-overhead-{platform.node() or 'unknown'}.json"
    _atomic.write_text(dest, json.dumps(out, indent=2) + "\n")
    spread = out["loop_vs_bulk_overhead_pct"]
    print(f"ORT call p50 {out['ort_call_p50_us']:.1f} us; harness no-op {out['noop_p50_us']:.3f} "
          f"us/call = {out['noop_overhead_pct']:.3f}% of the call; loop vs bulk: median "
          f"{spread['median']:+.3f}% (min {spread['min']:+.3f}%, max {spread['max']:+.3f}%)")
    print(f"wrote {dest}")
    return out


if __name__ == "__main__":
    main()

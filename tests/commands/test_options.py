"""Each command's flags become one typed options value (and one LoadOptions) that reaches
the library function unchanged: the signature is written once."""
from __future__ import annotations

import pytest

from infertune.cli import bench, build_parser, evaluate, optimize, predict, sensitivity
from infertune.cli.common import load_options
from infertune.commands.options import (BenchOptions, EvalOptions, PredictOptions,
                                        ProfileOptions, SensitivityOptions, split_options)
from infertune.errors import ConfigError
from infertune.load import LoadOptions


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_load_flags_become_one_load_options():
    args = parse("bench", "m.onnx", "--input-size", "32x48", "--num-classes", "7",
                 "--bn-eps", "gpu", "--seed", "3", "--allow-partial")
    assert load_options(args) == LoadOptions(input_size=(32, 48), num_classes=7, bn_eps="gpu",
                                             seed=3, allow_partial=True)


def test_bench_flags_become_bench_options():
    args = parse("bench", "m.onnx", "--runtime", "torch,onnxruntime", "--batch", "1,8",
                 "--threads", "2", "--rounds", "4", "--min-runs", "9", "--min-seconds", "0.5")
    assert bench.options(args) == BenchOptions(runtimes="torch,onnxruntime", batches="1,8",
                                               threads=2, rounds=4, min_runs=9,
                                               min_seconds=0.5)


def test_eval_sensitivity_predict_options():
    args = parse("eval", "m.onnx", "--data", "sample", "--limit", "10", "--reference", "r.onnx")
    assert evaluate.options(args) == EvalOptions(data="sample", limit=10, reference="r.onnx")
    args = parse("sensitivity", "m.onnx", "--data", "sample", "--per-tensor")
    assert sensitivity.options(args) == SensitivityOptions(data="sample", per_channel=False)
    args = parse("predict", "m.onnx", "a.png", "b.png", "--top", "2", "--thresh", "0.3")
    assert predict.options(args) == PredictOptions(images=("a.png", "b.png"), top=2,
                                                   score_threshold=0.3)


def test_optimize_config_records_only_the_load_options_set():
    args = parse("optimize", "m.onnx", "--seed", "5", "--trust-code")
    config = optimize.config_from_args(args, load_options(args))
    assert config.load == {"trust_code": True, "bn_eps": "cpu", "seed": 5}
    assert config.seed == 5


def test_split_options_for_the_convenience_functions():
    own, load = split_options(ProfileOptions, {"threads": 2, "seed": 4, "input_size": (8, 8)})
    assert own == ProfileOptions(threads=2)
    assert load == LoadOptions(seed=4, input_size=(8, 8))
    with pytest.raises(TypeError):
        split_options(ProfileOptions, {"no_such_option": 1})
    with pytest.raises(ConfigError, match="bn_eps"):
        split_options(ProfileOptions, {"bn_eps": "tpu"})

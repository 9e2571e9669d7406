"""compare: decisions and exit codes on hand-made pairs of reports (fixtures.py)."""
from __future__ import annotations

import json
import math

import pytest

from infertune.cli import main
from infertune.errors import ConfigError, InfertuneError
from infertune.report import compare as cmp

from .fixtures import make_report


def _pick(report):
    """The pick's report.json object (to change before writing)."""
    return next(c for c in report["candidates"] if c["id"] == report["pick"])


def _write(tmp_path, name, report):
    path = tmp_path / name
    path.mkdir()
    (path / "report.json").write_text(json.dumps(report))
    return path


def _slower(report, factor, *, samples=True):
    pick = _pick(report)
    pick["latency_ms"]["p50"] *= factor
    pick["latency_samples_ms"] = ([x * factor for x in pick["latency_samples_ms"]]
                                  if samples else [])
    return report


def test_clear_regression_fails_and_a_higher_threshold_passes(tmp_path):
    old = _write(tmp_path, "old", make_report())
    new = _write(tmp_path, "new", _slower(make_report(), 1.2))
    result = cmp.compare(old, new)
    assert result["latency"]["ratio"] == pytest.approx(1.2)
    assert result["latency"]["ci"][0] > 1.0 and result["latency"]["beyond_noise"]
    assert result["exit_code"] == 1 and "latency" in result["regressions"][0]
    assert cmp.compare(old, new, fail_on_regression="25%")["exit_code"] == 0
    assert main(["compare", str(old), str(new)]) == 1
    assert main(["compare", str(old), str(new), "--fail-on-regression", "25%", "--json"]) == 0


def test_slower_than_threshold_but_within_noise_passes(tmp_path):
    old_r, new_r = make_report(), make_report()
    # ±60 % spread on both sides: a 6 % slower median is not distinguishable from noise
    wide = [20.0 * (0.4 + 1.2 * i / 20) for i in range(21)]
    _pick(old_r)["latency_samples_ms"] = wide
    _pick(new_r)["latency_samples_ms"] = [x * 1.06 for x in wide]
    _pick(new_r)["latency_ms"]["p50"] = 21.2
    result = cmp.compare(_write(tmp_path, "a", old_r), _write(tmp_path, "b", new_r))
    assert result["latency"]["ratio"] == pytest.approx(1.06)
    assert result["latency"]["ci"][0] < 1.0 < result["latency"]["ci"][1]
    assert result["latency"]["beyond_noise"] is False
    assert result["exit_code"] == 0


def test_different_cpus_are_not_comparable(tmp_path):
    new_r = _slower(make_report(), 1.5)
    new_r["machine"]["cpu"]["model"] = "Another CPU"
    new_r["machine"]["cpu"]["isa"]["amx_int8"] = True
    new_r["machine"]["libraries"]["onnxruntime"] = "1.23.0"
    result = cmp.compare(_write(tmp_path, "a", make_report()), _write(tmp_path, "b", new_r))
    assert result["latency"]["comparable"] is False and result["exit_code"] == 0
    diffs = {d["what"]: d for d in result["machine_differences"]}
    assert diffs["CPU"]["new"] == "Another CPU"
    assert diffs["ISA"] == {"what": "ISA", "old": "-", "new": "amx_int8"}
    assert result["version_differences"] == [{"what": "onnxruntime", "old": "1.22.0",
                                              "new": "1.23.0"}]


def test_accuracy_drop_beyond_the_limit_fails(tmp_path):
    old = _write(tmp_path, "old", make_report())
    new_r = make_report()
    top1 = _pick(new_r)["accuracy"]["top1"]
    top1.update(value=88.9, low=86.9, high=90.7)              # 89.6 → 88.9: −0.7 points
    result = cmp.compare(old, _write(tmp_path, "new", new_r))
    acc = result["accuracy"]
    assert acc["difference"] == pytest.approx(-0.7)
    # half-widths (91.4−87.6)/2 = 1.9 and (90.7−86.9)/2 = 1.9, in quadrature 1.9·√2
    assert acc["ci"] == pytest.approx([-0.7 - 1.9 * math.sqrt(2), -0.7 + 1.9 * math.sqrt(2)])
    assert acc["beyond_noise"] is False
    assert result["exit_code"] == 1 and "dropped 0.70 points" in result["regressions"][0]
    assert cmp.compare(old, tmp_path / "new", max_accuracy_drop=1.0)["exit_code"] == 0


def test_without_samples_the_cv_gives_the_interval(tmp_path):
    old_r = _slower(make_report(), 1.0, samples=False)
    new_r = _slower(make_report(), 1.2, samples=False)
    lat = cmp.compare(_write(tmp_path, "a", old_r), _write(tmp_path, "b", new_r))["latency"]
    # se of a median from cv 0.03, n 21: 1.2533·0.03/√21 on each side, combined in quadrature
    half = 1.959964 * math.hypot(*(2 * [math.sqrt(math.pi / 2) * 0.03 / math.sqrt(21)]))
    assert lat["ci"] == pytest.approx([1.2 * math.exp(-half), 1.2 * math.exp(half)], rel=1e-5)
    assert lat["regression"] and "cv" in lat["method"]


def test_median_ratio_ci_of_constant_samples_is_exact():
    assert cmp.median_ratio_ci([10.0] * 7, [12.0] * 7) == pytest.approx((1.2, 1.2, 1.2))


def test_model_cards_and_baseline_when_no_pick(tmp_path):
    no_pick = make_report()
    no_pick["pick"] = None
    card = {"recipe": [{"pass": "fold_bn"}], "runtime": "onnxruntime",
            "metrics": {"latency_ms": {"p50": 30.0, "cv": 0.02, "n": 50}, "accuracy": 0.897,
                        "size_mb": 20.0, "throughput_ips": {"1": 33.0}, "peak_rss_mb": 300},
            "machine": make_report()["machine"], "versions": {"onnxruntime": "1.22.0"}}
    card_path = tmp_path / "model_card.json"
    card_path.write_text(json.dumps(card))
    result = cmp.compare(_write(tmp_path, "a", no_pick), card_path)
    assert result["old"]["which"] == "baseline" and result["new"]["kind"] == "model_card"
    assert result["latency"]["ratio"] == pytest.approx(0.3)         # 100 ms → 30 ms
    assert result["accuracy"]["new"][0] == pytest.approx(89.7)      # fraction → percent
    assert result["exit_code"] == 0


def test_user_errors(tmp_path, capsys):
    good = _write(tmp_path, "good", make_report())
    with pytest.raises(InfertuneError, match="no such file"):
        cmp.compare(tmp_path / "missing", good)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(InfertuneError, match="neither a report.json nor a model card"):
        cmp.compare(other, good)
    with pytest.raises(ConfigError):
        cmp.compare(good, good, fail_on_regression="fast")
    assert main(["compare", str(tmp_path / "missing"), str(good)]) == 2
    assert "no such file" in capsys.readouterr().err

"""Property tests: the Darknet cfg parser/planner/builder and the .weights reader never crash.

Every generated input either loads or is refused with a one-line InfertuneError (see
fuzz_targets.check_outcome). The plain tests at the end are the crashes these properties
found, kept as regression tests.
"""
from __future__ import annotations

import pytest
from fuzz_targets import (SMALL_CFG, cfg_text_strategy, check_outcome, load_cfg_file,
                          load_weights_bytes, real_weights, run_cfg, weights_strategy)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infertune.errors import DarknetCfgError, WeightsError
from infertune.load.darknet import network_from_text, parse_cfg
from infertune.load.darknet.budget import MAX_ACTIVATION_VALUES, MAX_PARAMS
from infertune.load.darknet.cfg import atof, atoi

pytestmark = pytest.mark.fuzz

FAST = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
WEIGHTS = real_weights()


@FAST
@given(cfg_text_strategy())
def test_cfg_text_loads_or_is_refused(text):
    check_outcome(lambda: run_cfg(text))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(cfg_text_strategy(), st.binary(max_size=200)))
def test_cfg_file_loads_or_is_refused(tmp_path, data):
    check_outcome(lambda: load_cfg_file(data, tmp_path))


@FAST
@given(weights_strategy(WEIGHTS), st.booleans())
def test_weights_load_or_are_refused(tmp_path, data, allow_partial):
    outcome = check_outcome(lambda: load_weights_bytes(data, tmp_path, allow_partial))
    if data == WEIGHTS:
        assert outcome == "ok"


# ----------------------------------------------------------------------------- regressions

NET8 = "[net]\nwidth=8\nheight=8\nchannels=3\n"


@pytest.mark.parametrize("body, words", [
    # 10^9 filters: 27 G parameters, refused before torch tried to allocate 108 GB
    ("[convolutional]\nfilters=1000000000\nsize=3\n", "parameters"),
    ("[connected]\noutput=99999999999\n", "parameters"),
    ("[local]\nfilters=10000000\nsize=3\npad=1\n", "parameters"),
    ("[deconvolutional]\nfilters=3\nsize=100000\nstride=100000\n", "parameters"),
    # size² overflowed torch's storage-size computation (RuntimeError)
    ("[convolutional]\nfilters=1\nsize=99999999999999\npad=1\n", "parameters"),
    ("[upsample]\nstride=100000000\n", "values per image"),
    ("[reorg]\nextra=10000000000\n", "values per image"),
    # the padded input of a maxpool, not its output, is what forward allocates
    ("[maxpool]\nsize=1000000000\npadding=1000000000\n", "values per image"),
    # LRN's forward loops `size` times: a hang, not only memory
    ("[normalization]\nsize=1000000000\n", "size=1000000000"),
])
def test_cfg_over_the_allocation_bound_is_refused_by_line(body, words):
    with pytest.raises(DarknetCfgError, match=words) as err:
        network_from_text(NET8 + body, name="big.cfg")
    # the section header (line 5) or the offending key's line (6), and one line only
    assert str(err.value).startswith(("big.cfg:5:", "big.cfg:6:")) and "\n" not in str(err.value)


def test_huge_input_size_is_refused_before_building():
    text = "[net]\nwidth=1000000000\nheight=1000000000\nchannels=3\n[convolutional]\nsize=1\n"
    with pytest.raises(DarknetCfgError, match="values per image"):
        network_from_text(text)


def test_bounds_are_far_above_real_networks():
    from infertune.load.darknet.budget import layer_params
    from infertune.load.darknet.build import plan_network
    from infertune.zoo.darknet_family import ARCHS

    darknet19 = next(a for a in ARCHS if a.name == "darknet19_448")
    _, plans = plan_network(parse_cfg(darknet19.cfg_text(448, 448, 1000)))
    params = sum(layer_params(p) for p in plans)
    # 20.8 M weights + 4 values per filter for bias/BN (the .weights count, 19.8 M + BN)
    assert 19e6 < params < 22e6 and params * 40 < MAX_PARAMS
    largest = max(p.out_shape[0] * p.out_shape[1] * p.out_shape[2] for p in plans
                  if not isinstance(p.out_shape, int))
    assert largest == 32 * 448 * 448 and largest * 40 < MAX_ACTIVATION_VALUES


def test_atoi_saturates_instead_of_raising_on_5000_digits():
    # int() refuses strings of more than 4300 digits (ValueError escaped the parser)
    assert atoi("9" * 5000) == 2**63 - 1
    assert atoi("-" + "9" * 5000) == -(2**63)
    assert atoi("42abc") == 42 and atoi("x") == 0


def test_atof_hex_overflow_is_inf_like_strtod():
    # float.fromhex raised OverflowError
    assert atof("0x1p99999") == float("inf") and atof("-0x1p99999") == float("-inf")
    assert atof("0x1p4") == 16.0


def test_nan_softmax_temperature_is_refused():
    with pytest.raises(DarknetCfgError, match="finite"):
        network_from_text(SMALL_CFG + "temperature=nan\n")


def test_real_weights_round_trip_and_truncation_message(tmp_path):
    load_weights_bytes(WEIGHTS, tmp_path)
    with pytest.raises(WeightsError, match="expected .* floats"):
        load_weights_bytes(WEIGHTS[:-3], tmp_path)

"""Pass option parsing and config validation (no ML framework needed)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest

from infertune.errors import ConfigError
from infertune.passes.base import PassSpec, config_from_options, parse_pass_arg


@dataclass(frozen=True)
class DemoConfig:
    method: Literal["minmax", "percentile", "entropy"] = "minmax"
    per_channel: bool = True
    percentile: float = 99.99
    keep: tuple[str, ...] = ()
    limit: int | None = None

    def __post_init__(self):
        if not 0 < self.percentile <= 100:
            raise ValueError(f"percentile must be in (0, 100], not {self.percentile}")


SPEC = PassSpec("demo", DemoConfig, ("onnx",), lambda m, c, ctx: None, "a demo pass")


def test_parse_pass_arg():
    assert parse_pass_arg("fold_bn") == ("fold_bn", {})
    assert parse_pass_arg("int8_static:method=entropy,per_channel=false") == (
        "int8_static", {"method": "entropy", "per_channel": "false"})
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_pass_arg("int8_static:entropy")


def test_config_from_cli_strings():
    cfg = config_from_options(SPEC, {"method": "entropy", "per_channel": "no", "percentile": "99.9",
                                     "keep": "conv1+conv2", "limit": "none"})
    assert cfg == DemoConfig("entropy", False, 99.9, ("conv1", "conv2"), None)
    assert config_from_options(SPEC, {"limit": "7"}).limit == 7


@pytest.mark.parametrize("options,message", [
    ({"methd": "entropy"}, "unknown option 'methd'; did you mean 'method'"),
    ({"method": "mse2"}, "method must be one of minmax, percentile, entropy"),
    ({"per_channel": "maybe"}, "must be true or false"),
    ({"percentile": "abc"}, "must be float"),
    ({"percentile": "120"}, "percentile must be in"),
])
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message):
        config_from_options(SPEC, options)


def test_options_listing():
    names = [o["name"] for o in SPEC.options()]
    assert names == ["method", "per_channel", "percentile", "keep", "limit"]
    assert SPEC.options()[0]["type"] == "minmax|percentile|entropy"

import pytest

from infertune.errors import ConfigError
from infertune.registry import Registry


def test_register_get_and_order():
    reg = Registry("widget")

    @reg.register("alpha")
    def alpha():
        return 1

    reg.add("beta", 2)
    assert reg.get("alpha") is alpha
    assert reg.names() == ["alpha", "beta"]
    assert "beta" in reg and "gamma" not in reg


def test_unknown_name_suggests_nearest():
    reg = Registry("zoo model")
    reg.add("darknet19_448", 1)
    reg.add("resnet18", 2)
    with pytest.raises(ConfigError, match=r"unknown zoo model 'darknet19_488'; did you mean 'darknet19_448'\?"):
        reg.get("darknet19_488")


def test_unknown_name_without_close_match_lists_all():
    reg = Registry("runtime")
    reg.add("onnxruntime", 1)
    with pytest.raises(ConfigError, match="known: onnxruntime"):
        reg.get("zzz")


def test_double_registration_is_a_bug():
    reg = Registry("pass")
    reg.add("fuse", 1)
    with pytest.raises(ValueError):
        reg.add("fuse", 2)

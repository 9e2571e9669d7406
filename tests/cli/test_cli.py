import argparse

import pytest

from infertune.cli import build_parser, main, parse_size


@pytest.mark.parametrize("text,expected", [("448x448", (448, 448)), ("224", (224, 224)),
                                           ("256X320", (256, 320)), ("32×48", (32, 48))])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "a", "0x4", "1x2x3", "-3"])
def test_parse_size_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


@pytest.mark.parametrize("command", ["zoo", "profile", "export"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert "usage: infertune " + command in capsys.readouterr().out


def test_missing_subcommand_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_bn_eps_choices():
    args = build_parser().parse_args(["profile", "x.cfg", "--bn-eps", "gpu"])
    assert args.bn_eps == "gpu"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["profile", "x.cfg", "--bn-eps", "tpu"])

"""Each command's options dataclass is the only source of its defaults: argparse must agree with it everywhere."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from emollama.cli.__main__ import COMMANDS, build_parser, command_parser
from emollama.cli.options import add_dataclass_arguments, arg, field_default, options_from_args

CONVERTED = {"analyze", "demo", "eval", "export", "gen-data", "merge-lora", "predict", "prepare", "report", "score",
             "serve", "show-config", "train", "train-expression"}
# commands with sub-actions: each action's options are a dataclass of the command module
SUB_ACTIONS = {("assets", "list"): "ListOptions", ("assets", "fetch"): "FetchOptions",
               ("assets", "verify"): "VerifyOptions", ("convert", "llama-vid"): "LlamaVidOptions",
               ("datasets", "check"): "CheckOptions"}


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[name]


def _assert_defaults_match(parser: argparse.ArgumentParser, cls: type) -> None:
    actions = {a.dest: a for a in parser._actions}
    for f in dataclasses.fields(cls):
        if not f.metadata.get("cli", True):
            assert f.name not in actions, f"{cls.__name__}.{f.name} is not a flag of this command"
            continue
        assert f.name in actions, f"{cls.__name__}.{f.name} has no argument"
        default = field_default(f)
        if default is dataclasses.MISSING:
            assert actions[f.name].required or not actions[f.name].option_strings, f.name
        else:
            assert actions[f.name].default == default, f"{cls.__name__}.{f.name}"


def test_the_converted_commands_are_the_expected_ones():
    have = {name for name, mod in COMMANDS.items() if hasattr(importlib.import_module(mod), "Options")}
    assert have == CONVERTED


@pytest.mark.parametrize("name", sorted(CONVERTED))
def test_every_argparse_default_is_the_dataclass_default(name):
    _assert_defaults_match(command_parser(name), importlib.import_module(COMMANDS[name]).Options)


@pytest.mark.parametrize("path", sorted(SUB_ACTIONS))
def test_sub_action_defaults_are_the_dataclass_defaults(path):
    command, action = path
    cls = getattr(importlib.import_module(COMMANDS[command]), SUB_ACTIONS[path])
    _assert_defaults_match(_subparser(command_parser(command), action), cls)


def test_serve_limits_are_the_media_limits():
    from emollama.api import MediaLimits
    from emollama.cli.serve import Options
    from emollama.serve.limits import ServeSettings

    opts = options_from_args(Options, command_parser("serve").parse_args([]))
    limits = MediaLimits()
    for name in ("max_pixels", "max_video_s", "max_video_frames"):
        assert getattr(opts, name) == getattr(limits, name) == getattr(ServeSettings(), name), name
    text = " ".join(command_parser("serve").format_help().split())
    assert f"longest video in seconds (413 beyond; default {limits.max_video_s:g})" in text
    assert f"thinned to this (default {limits.max_video_frames})" in text
    assert f"default {limits.max_pixels / 1e6:g}M" in text


def test_analyze_defaults_are_the_analyzer_options():
    from emollama.analyze.runner import AnalyzeOptions
    from emollama.cli.analyze import Options

    opts = options_from_args(Options, build_parser().parse_args(["analyze", "x.jpg"]))
    assert opts.analyzer_options() == AnalyzeOptions()


def test_sampling_defaults_are_the_library_policy():
    from emollama.cli import predict, prepare
    from emollama.media.sampling import DEFAULT_POLICY

    assert predict.Options.__dataclass_fields__["video_sampling"].default == DEFAULT_POLICY
    assert prepare.Options.__dataclass_fields__["video_sampling"].default == DEFAULT_POLICY


@dataclass(kw_only=True)
class _Demo:
    src: str = arg(positional=True, metavar="SRC", help="input")
    name: str = arg(help="required option")
    size: float = arg(2.5, metavar="S", help="seconds (default {default:g}); 100%% of it")
    out: Path = arg(Path("o.txt"), help="file (default {default}) as JSON {id: x}")
    tags: list[str] = arg(default_factory=list, flag="--tag", help="repeatable")
    fast: bool = arg(False, help="go fast")
    verbose: int = arg(0, cli=False)


def test_helper_builds_arguments_from_fields():
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, _Demo)
    text = " ".join(p.format_help().split())
    assert "seconds (default 2.5); 100% of it" in text and "file (default o.txt) as JSON {id: x}" in text
    assert "--verbose" not in text
    ns = p.parse_args(["a", "--name", "n", "--tag", "x", "--tag", "y", "--fast", "--size", "3"])
    opts = options_from_args(_Demo, ns)
    assert opts == _Demo(src="a", name="n", size=3.0, tags=["x", "y"], fast=True)
    assert options_from_args(_Demo, argparse.Namespace(**vars(ns), verbose=2)).verbose == 2
    with pytest.raises(SystemExit):
        p.parse_args(["a"])  # --name is required: it has no default
    assert options_from_args(_Demo, p.parse_args(["a", "--name", "n"])).tags == []


@pytest.mark.parametrize("text,value", [("40000000", 40_000_000), ("40M", 40_000_000), ("2.5m", 2_500_000),
                                        ("500k", 500_000), (" 1G ", 1_000_000_000), ("40_000_000", 40_000_000),
                                        ("+7", 7)])
def test_pixel_counts_accept_the_suffix_the_help_shows(text, value):
    from emollama.cli.options import pixel_count

    assert pixel_count(text) == value


@pytest.mark.parametrize("text", ["", "M", "-5", "40MB", "0", "1e6", "forty", "1.5", "0.0005k"])
def test_bad_pixel_counts_name_the_accepted_forms(text):
    from emollama.cli.options import pixel_count

    with pytest.raises(argparse.ArgumentTypeError, match="40M"):
        pixel_count(text)


@pytest.mark.parametrize("command", ["analyze", "serve"])
def test_max_pixels_takes_its_own_default_as_printed(command, capsys):
    parser = build_parser()
    sub = _subparser(parser, command)
    shown = next(a for a in sub._actions if a.dest == "max_pixels").help.split("default ")[-1].rstrip(")")
    ns = parser.parse_args([command, *(["x.jpg"] if command == "analyze" else []), "--max-pixels", shown])
    assert ns.max_pixels == field_default(next(f for f in dataclasses.fields(
        importlib.import_module(f"emollama.cli.{command}").Options) if f.name == "max_pixels"))
    with pytest.raises(SystemExit):
        parser.parse_args([command, *(["x.jpg"] if command == "analyze" else []), "--max-pixels", "big"])
    assert "not a pixel count" in capsys.readouterr().err


@pytest.mark.parametrize("n", [40_000_000, 100_000_000, 1_234_567, 999])
def test_a_shown_pixel_default_reads_back_as_itself(n):
    from emollama.cli.options import pixel_count, show_pixels

    assert pixel_count(show_pixels(n)) == n

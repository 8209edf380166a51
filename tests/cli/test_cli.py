"""CLI: `--help` for every subcommand present, show-config and demo end to end (in-process)."""

from __future__ import annotations

import pytest

from emollama.cli.__main__ import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_top_level_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for name in _subcommands():
        assert name in out


@pytest.mark.parametrize("name", _subcommands())
def test_each_subcommand_help(name, capsys):
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    assert "usage: emollama " + name in capsys.readouterr().out


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_show_config_token_budget(capsys):
    assert main(["show-config", "tiny", "--set", "compress_type=grid:2", "--frames", "5"]) == 0
    out = capsys.readouterr().out
    assert "compress_type: grid:2" in out
    assert "tokens per frame: 5 (1 context + 4 content)" in out
    assert "video of 5 frames: 25 tokens (all-patches LLaVA-style: 80)" in out


def test_show_config_bad_key_is_an_error_not_a_traceback(capsys):
    assert main(["show-config", "tiny", "--set", "num_querys=1"]) == 1
    assert "unknown config key 'num_querys'" in capsys.readouterr().err


def test_demo_runs_end_to_end(capsys):
    assert main(["demo", "--mllm", "--frames", "3", "--max-new-tokens", "3"]) == 0
    out = capsys.readouterr().out
    assert "- image: 2 visual tokens + 4 face tokens" in out
    assert "- video (3 frames): 6 visual tokens + 4 face tokens" in out

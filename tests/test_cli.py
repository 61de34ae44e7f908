"""One dialect per invocation: under ``mmt-tune COMMAND`` usage, error lines and hints say ``mmt-tune``; under
``python -m`` they say ``python -m``."""

from __future__ import annotations

import pytest

from mmt_tune import cli


@pytest.mark.parametrize("name", ["scan", "convert", "predict", "run", "report", "importance", "extract"])
def test_usage_and_errors_name_the_command_as_it_was_invoked(name, capsys):
    with pytest.raises(SystemExit) as exited:  # required options missing: argparse's error, exit 2
        cli.main([name])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert f"usage: mmt-tune {name} " in err and f"mmt-tune {name}: error:" in err
    assert "python -m" not in err
    module = __import__(cli.COMMANDS[name][0], fromlist=["main"])
    with pytest.raises(SystemExit):
        module.main([])
    err = capsys.readouterr().err
    assert f"usage: {cli.command(name)} " in err and "mmt-tune" not in err


def test_hints_for_the_next_command_follow_the_dialect():
    assert cli.command("report") == "python -m analysis.report"
    cli.INVOKED_AS = "mmt-tune run"
    try:
        assert cli.command("report") == "mmt-tune report" and cli.command("predict") == "mmt-tune predict"
    finally:
        cli.INVOKED_AS = None


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_every_option_is_explained_once_without_noise(name):
    module = __import__(cli.COMMANDS[name][0], fromlist=["build_parser"])
    if not hasattr(module, "build_parser"):
        pytest.skip(f"{name} has no argparse parser")
    parser = module.build_parser()
    text = parser.format_help()
    assert "(default: None)" not in text and "%%" not in text and "``" not in text
    undocumented = [a.option_strings[0] for a in parser._actions if a.option_strings and not a.help]
    assert undocumented == []
    assert not any(line.count("(default") > 1 for line in text.splitlines())


def test_help_command_and_one_name_for_the_same_option(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["help", "run"])
    assert exited.value.code == 0 and "usage: mmt-tune run" in capsys.readouterr().out
    assert cli.main(["help"]) == 0 and "mmt-tune help COMMAND" in capsys.readouterr().out
    from mmt_tune.analysis.importance.cli import build_parser as importance
    from mmt_tune.demo import build_parser as demo
    from mmt_tune.fit import build_parser as fit

    assert demo().parse_args(["--num-samples", "3"]).samples == 3  # as run names it
    assert importance().parse_args(["r", "--workers", "2"]).jobs == 2  # as extract names it
    with pytest.raises(SystemExit):
        fit().parse_args(["--objective", "aucc"])  # a choice, as report's
    assert "invalid choice: 'aucc'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["run", "extract", "synth", "demo", "report", "importance"])
def test_every_command_with_progress_bars_takes_no_progress_or_quiet(name):
    module = __import__(cli.COMMANDS[name][0], fromlist=["build_parser"])
    options = [a for a in module.build_parser()._actions if a.dest == "no_progress"]
    assert len(options) == 1 and set(options[0].option_strings) == {"--no-progress", "--quiet"}


@pytest.mark.parametrize("name", ["run", "extract", "demo"])
def test_every_command_that_starts_ray_takes_verbose(name):
    module = __import__(cli.COMMANDS[name][0], fromlist=["build_parser"])
    options = [a for a in module.build_parser()._actions if a.dest == "verbose"]
    assert len(options) == 1 and options[0].option_strings == ["--verbose"]
    assert "Ray's" in options[0].help

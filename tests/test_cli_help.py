"""The command lines a newcomer meets first: every flag described, defaults shown once and never a secret, and
the two spellings of a name accepted."""
from __future__ import annotations

import argparse
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CLIS = ["app", "theorem_bank", "training.synthetic", "training.data", "train.py", "evaluate.py"]


def undescribed_flags(target: str, monkeypatch) -> dict[str, list[str]]:
    """Flags without help text in the parser (and its sub-commands) that `target` builds, caught at parse time."""
    found: dict[str, list[str]] = {}

    def inspect(parser, *args, **kwargs):
        parsers = [parser]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers += list(action.choices.values())
        for each in parsers:
            missing = [a.option_strings[0] for a in each._actions
                       if a.option_strings and not a.help and a.help is not argparse.SUPPRESS]
            if missing:
                found[each.prog] = missing
        raise SystemExit(0)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", inspect)
    monkeypatch.setattr(sys, "argv", [target, "--help"])
    with pytest.raises(SystemExit):
        if target.endswith(".py"):
            runpy.run_path(str(REPO / target), run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    return found


@pytest.mark.parametrize("target", CLIS)
def test_every_flag_is_described(target, monkeypatch):
    monkeypatch.chdir(REPO)
    assert undescribed_flags(target, monkeypatch) == {}


def test_app_help_shows_the_port_default_once_and_never_the_api_key():
    env = dict(os.environ, OPENAI_API_KEY="sk-test-not-for-help", PYTHONPATH=str(REPO))
    text = subprocess.run([sys.executable, "-m", "app", "--help"], cwd=REPO, env=env, capture_output=True,
                          text=True, check=True).stdout
    assert "sk-test-not-for-help" not in text
    assert "(default: 7860)" in text
    # One option's help, its wrapped lines joined, names its default at most once.
    blocks = " ".join(text.split()).split(" --")
    assert [b.split()[0] for b in blocks if b.count("default") > 1] == []
    assert "(default: None)" not in text and "(default: False)" not in text


def test_formalgeo_is_one_name_with_both_spellings_accepted():
    import evaluate
    from training.data.build import SOURCES

    parser = evaluate.build_parser()
    for name in ("formalgeo", "formalgeo7k"):
        assert parser.parse_args(["run", "--benchmark", name, "--data", "d", "--out", "o"]).benchmark == "formalgeo"
    assert "formalgeo7k" in SOURCES
    done = subprocess.run([sys.executable, "-m", "training.data", "build", "--source", "formalgeo", "--path",
                           str(REPO / "no-such-folder"), "--target", "theorem", "--out", os.devnull],
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True)
    assert "invalid choice" not in done.stderr and "FormalGeo" in done.stderr, done.stderr

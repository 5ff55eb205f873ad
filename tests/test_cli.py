"""The ``sam4ir`` command: its listing, what it forwards to each module, and how little ``--help`` imports."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sam4ir import cli, models
from sam4ir.io import read_image, write_image
from test_restore import TINY, tiny_nafnet

SRC = Path(cli.__file__).parent
HEAVY = ("torch", "cv2", "pandas", "numpy")
# the commands whose --help prints their module docstring whole (the stages' go through stages/args.py)
DESCRIBED = ("restore", "presets", "mechanism", "ablation", "paper-tables", "exp-table")


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    """``sam4ir ARGV`` in process: exit status, stdout, stderr; ``sys.argv``, which it replaces, is put back."""
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    try:
        cli.main(argv)
        code = 0
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def test_help_lists_every_command_with_its_summary_and_imports_nothing_heavy():
    probe = ("import runpy, sys\n"
             "try:\n    runpy.run_module('sam4ir', run_name='__main__')\n"
             "except SystemExit as stop:\n    assert stop.code == 0, stop.code\n"
             f"print('loaded:', [m for m in {HEAVY!r} if m in sys.modules])")
    proc = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, check=True)
    assert proc.stdout.startswith("usage: sam4ir ")
    for name, command in cli.COMMANDS.items():
        assert re.search(rf"^  {re.escape(name)} +{re.escape(command.summary)}$", proc.stdout, re.M), name
    assert proc.stdout.rstrip().endswith("loaded: []")


def test_every_runnable_module_has_a_command():
    runnable = {".".join(("sam4ir", *path.relative_to(SRC).with_suffix("").parts)) for path in SRC.rglob("*.py")
                if 'if __name__ == "__main__":' in path.read_text()}
    assert runnable == {command.module for command in cli.COMMANDS.values()}
    assert all(command.summary.endswith(".") and command.summary[0].isupper() for command in cli.COMMANDS.values())


@pytest.mark.parametrize("name", DESCRIBED)
def test_command_help_is_the_module_s_whole_docstring(name, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, name, "--help")
    assert code == 0
    assert out.startswith(f"usage: sam4ir {name} ")
    assert importlib.import_module(cli.COMMANDS[name].module).__doc__.strip() in out


def test_restore_gets_its_arguments(tmp_path, monkeypatch, capsys):
    models.save_model(tmp_path / "model.pt", tiny_nafnet(), "nafnet", TINY)
    write_image(tmp_path / "in" / "a.png", np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    code, out, _ = run_cli(monkeypatch, capsys, "restore", "--checkpoint", str(tmp_path / "model.pt"), "--input",
                           str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--device", "cpu", "--tile", "0")
    assert code == 0 and out.startswith("restored 1 image(s)")
    assert read_image(tmp_path / "out" / "a.png").shape == (20, 24, 3)


def test_a_command_s_bad_input_is_one_line_and_status_1(tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "restore", "--checkpoint", "x.pt", "--input", str(tmp_path / "nope"),
                           "--output", str(tmp_path / "out"))
    assert (code, err) == (1, f"sam4ir: error: {tmp_path / 'nope'}: input not found\n")


@pytest.mark.parametrize("argv", [("nope",), ("nope", "--help")])
def test_an_unknown_command_is_one_line_and_status_2(argv, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, *argv)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith("sam4ir: error: unknown command 'nope'; known: prepare-data, ")

"""The code stage: each stage of dvc.yaml depends on one fingerprint of exactly the code it runs, which changes when
that code changes and only then."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import sam4ir
from sam4ir.errors import Sam4irError
from sam4ir.stages.code import CODE, code_files, write_code_fingerprints

REPO = Path(__file__).resolve().parents[1]


def tree(root: Path) -> None:
    for rel, text in {"models/a.py": "A = 1\n", "models/b.py": "B = 2\n", "train.py": "T = 3\n",
                      "models/__pycache__/a.cpython-311.pyc": "bytecode", "report.py": "R = 4\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_a_stage_s_fingerprint_changes_with_its_code_only(tmp_path):
    root, out = tmp_path / "src", tmp_path / "code"
    tree(root)
    code = {"train": ("models", "train.py"), "report": ("report.py",)}
    write_code_fingerprints(root, out, code)
    before = {s: json.loads((out / f"{s}.json").read_text()) for s in code}
    assert before["train"]["files"] == 3 and before["train"]["code"] == ["models", "train.py"]  # no bytecode
    (root / "models" / "__pycache__" / "a.cpython-311.pyc").write_text("other bytecode")
    write_code_fingerprints(root, out, code)
    assert {s: json.loads((out / f"{s}.json").read_text()) for s in code} == before
    (root / "models" / "b.py").write_text("B = 5\n")
    write_code_fingerprints(root, out, code)
    after = {s: json.loads((out / f"{s}.json").read_text()) for s in code}
    assert after["train"]["sha256"] != before["train"]["sha256"] and after["report"] == before["report"]


def test_an_entry_that_no_longer_exists_is_one_line_naming_it(tmp_path):
    tree(tmp_path)
    with pytest.raises(Sam4irError, match=r"models/c\.py: named in sam4ir\.stages\.code\.CODE, but not a file"):
        code_files(tmp_path, ("models", "models/c.py"))


def test_every_stage_of_dvc_yaml_depends_on_its_own_code_fingerprint_and_every_entry_exists():
    """A renamed module fails here, not silently in a fingerprint; a stage added to dvc.yaml needs its CODE entry."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert set(CODE) == set(stages) - {"code"}
    for name, stage in stages.items():
        if name != "code":
            assert f"data/code/{name}.json" in stage["deps"], name
            assert not [d for d in stage["deps"] if d.startswith("src/")], name  # code reaches it through its file
            assert code_files(Path(sam4ir.__file__).parent, CODE[name])
    assert stages["code"]["deps"] == ["src/sam4ir"] and stages["code"]["outs"] == ["data/code"]


def test_dvc_ignores_bytecode_in_the_code_and_nothing_in_the_data():
    """Bytecode under src/ must not reach the code stage's hash (it would re-run after every test run), and no ignore
    pattern may reach the data outs: DVC matches a root .dvcignore against every file there on every command."""
    assert not (REPO / ".dvcignore").exists()
    paths = ["src/sam4ir/__pycache__/io.cpython-311.pyc", "src/sam4ir/io.pyc", "src/sam4ir/io.py",
             "data/prepared/__pycache__/x.pyc", "data/masks/x.pyc"]
    done = subprocess.run([sys.executable, "-m", "dvc", "check-ignore", *paths], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == paths[:2]

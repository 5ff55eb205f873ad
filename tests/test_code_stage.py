"""The code stage: each stage of dvc.yaml depends on the record of exactly the modules its process can import,
derived from the import graph of this repository's src/, which changes when one of them changes and only then."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sam4ir.errors import Sam4irError
from sam4ir.stages import check_source
from sam4ir.stages.code import closure, entry_points, write_code_records

REPO = Path(__file__).resolve().parents[1]

# a small package laid out as sam4ir is: entry points under stages/, a lazily importing package (PEP 562 table),
# an import inside a function, a relative import, and a module no entry imports
TREE = {
    "sam4ir/__init__.py": "from sam4ir.errors import E\n",
    "sam4ir/errors.py": "E = 1\n",
    "sam4ir/io.py": "def read():\n    return 1\n",
    "sam4ir/sgr.py": "S = 1\n",
    "sam4ir/lazy/__init__.py": "_LAZY = {'sam4ir.lazy.heavy': ('Heavy',)}\n",
    "sam4ir/lazy/heavy.py": "from .light import L\nHeavy = L\n",
    "sam4ir/lazy/light.py": "L = 2\n",
    "sam4ir/stages/__init__.py": "",
    "sam4ir/stages/shared/__init__.py": "",
    "sam4ir/stages/train.py": "from sam4ir.lazy import Heavy\n\ndef main():\n    from sam4ir import io\n",
    "sam4ir/stages/report.py": "import sam4ir.sgr\n",
    "sam4ir/stages/__pycache__/train.cpython-311.pyc": "bytecode",
}


def tree(root: Path) -> Path:
    for rel, text in TREE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_closure_follows_every_kind_of_import(tmp_path):
    src = tree(tmp_path / "src")
    assert entry_points(src) == ["sam4ir.stages.report", "sam4ir.stages.train"]  # helpers' subpackages are not entries
    assert set(closure(src, "sam4ir.stages.train")) == {
        "sam4ir", "sam4ir.errors", "sam4ir.stages", "sam4ir.stages.train", "sam4ir.lazy", "sam4ir.lazy.heavy",
        "sam4ir.lazy.light", "sam4ir.io"}  # the lazy table's module, its relative import, the import in main()
    assert set(closure(src, "sam4ir.stages.report")) == {"sam4ir", "sam4ir.errors", "sam4ir.stages",
                                                        "sam4ir.stages.report", "sam4ir.sgr"}


def test_a_record_changes_with_the_modules_its_stage_imports_only(tmp_path):
    src, out = tree(tmp_path / "src"), tmp_path / "code"
    (out / "gone.json").parent.mkdir()
    (out / "gone.json").write_text("{}")  # the record of an entry point that no longer exists

    def records() -> dict:
        write_code_records(src, out)
        return {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}

    before = records()
    assert set(before) == {"train", "report"}
    assert before["train"]["cpu_pins"]["ATEN_CPU_CAPABILITY"] == "avx2"
    (src / "sam4ir/stages/__pycache__/train.cpython-311.pyc").write_text("other bytecode")
    assert records() == before
    (src / "sam4ir/io.py").write_text("def read():\n    return 2\n")  # imported inside a function: train only
    after = records()
    assert after["train"]["sha256"] != before["train"]["sha256"] and after["report"] == before["report"]
    (src / "sam4ir/sgr.py").write_text("S = 2\n")
    assert records()["train"] == after["train"]


def test_invalid_python_is_one_line_naming_the_file(tmp_path):
    src = tree(tmp_path / "src")
    (src / "sam4ir/sgr.py").write_text("def broken(:\n")
    with pytest.raises(Sam4irError, match=r"sgr\.py: not valid Python"):
        closure(src, "sam4ir.stages.report")


def test_every_stage_of_dvc_yaml_depends_on_the_record_of_the_module_it_runs():
    """The record a stage depends on is the one of the module its command runs; no stage names code otherwise."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    entries = entry_points(REPO / "src")
    for name, stage in stages.items():
        module = stage["cmd"].split()[stage["cmd"].split().index("-m") + 1]
        assert module in entries, name
        code = [d for d in stage.get("deps", []) if d.startswith(("data/code", "src/"))]
        expected = ["src/sam4ir"] if name == "code" else [f"data/code/{module.rsplit('.', 1)[1]}.json"]
        assert code == expected, name
    assert stages["code"]["outs"] == ["data/code"]


def test_a_stage_run_with_another_clone_s_sam4ir_stops_with_one_line(tmp_path):
    """A clone whose code differs from the sam4ir the interpreter imports stops; an identical copy (what
    `dvc exp run --temp` and queued experiments run in) passes."""
    import sam4ir

    shutil.copytree(Path(sam4ir.__file__).parent, tmp_path / "src" / "sam4ir",
                    ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    check_source(tmp_path)
    check_source(REPO)  # the tests' own interpreter runs this repository's code
    (tmp_path / "src" / "sam4ir" / "io.py").write_text("# edited in this clone\n")
    with pytest.raises(Sam4irError, match=r"imports sam4ir from there, whose io\.py differs from this repository's"):
        check_source(tmp_path)
    (tmp_path / "dvc.yaml").unlink()
    check_source(tmp_path)  # not a sam4ir repository: nothing to check


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

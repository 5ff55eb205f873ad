"""The fingerprint file that later DVC stages depend on instead of a data folder: it must change with every
change of the folder's data and with nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from sam4ir.fingerprint import FINGERPRINT, write_fingerprint

REPO = Path(__file__).resolve().parents[1]


def make_folder(root: Path) -> Path:
    (root / "train" / "input").mkdir(parents=True)
    (root / "train" / "input" / "a.png").write_bytes(b"aaaa")
    (root / "train" / "input" / "b.png").write_bytes(b"bb")
    (root / "summary.json").write_text("{}")
    return root


def test_the_fingerprint_follows_the_data_and_nothing_else(tmp_path):
    folder = make_folder(tmp_path / "prepared")
    first = write_fingerprint(folder)
    assert first == json.loads((folder / FINGERPRINT).read_text())
    assert first["files"] == 3 and first["bytes"] == 8
    assert write_fingerprint(folder) == first                       # its own file is not hashed
    (folder / "train" / "input" / ".a.png.x1.partial").write_bytes(b"half")
    assert write_fingerprint(folder) == first                       # nor a writer's leftover temp file
    (folder / "train" / "input" / "a.png").write_bytes(b"aaaa")    # rewritten, same bytes
    assert write_fingerprint(folder) == first

    changes = {"content": lambda: (folder / "train" / "input" / "a.png").write_bytes(b"aaab"),
               "rename": lambda: (folder / "train" / "input" / "b.png").rename(folder / "train" / "input" / "c.png"),
               "move": lambda: (folder / "train" / "input" / "c.png").rename(folder / "train" / "c.png"),
               "new file": lambda: (folder / "train" / "d.png").write_bytes(b""),
               "removal": lambda: (folder / "train" / "d.png").unlink()}
    seen = [first["sha256"]]
    for what, change in changes.items():
        change()
        seen.append(write_fingerprint(folder)["sha256"])
        assert seen[-1] != seen[-2], what
    assert seen[-1] == seen[-3]  # the removal undid the new file: the same data, the same fingerprint


def test_a_runs_fingerprint_covers_its_logs(tmp_path):
    """A run's record stands for its checkpoints and its dvclive logs (two outs of one stage): a change in either
    changes it, and the folder each file is in is part of what is hashed."""
    run, live = make_folder(tmp_path / "runs" / "spf"), make_folder(tmp_path / "live" / "spf")
    first = write_fingerprint(run, live)
    assert first["files"] == 6 and not (live / FINGERPRINT).exists()
    assert first != write_fingerprint(run)
    assert write_fingerprint(run, live) == first
    (live / "summary.json").write_text('{"val_psnr": 30}')
    second = write_fingerprint(run, live)
    assert second["sha256"] != first["sha256"]
    (live / "train" / "input" / "b.png").rename(run / "train" / "b.png")  # the same file, in the other out
    assert write_fingerprint(run, live)["sha256"] not in (first["sha256"], second["sha256"])


def test_stages_read_folders_through_their_fingerprints():
    """A stage that named another stage's folder out (or a folder holding outs) would make DVC walk it again on
    every command (the no-op cost, at paper size ~18 s); one that named a fingerprint no stage writes would never
    re-run. The only other files a stage reads inside an out are its own code fingerprint (data/code/<stage>.json)."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = {name: {next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])}
            for name, stage in stages.items()}
    every_out = set().union(*outs.values())
    fingerprinted = set()
    for name, stage in stages.items():
        for dep in stage["deps"]:
            inside = [o for o in every_out if dep == o or dep.startswith(o + "/") or o.startswith(dep + "/")]
            if not inside:
                continue
            assert inside != [dep] and not any(o.startswith(dep + "/") for o in inside), (name, dep)
            if dep.startswith("data/code/"):
                assert dep == f"data/code/{name}.json", (name, dep)
                continue
            assert dep.endswith("/" + FINGERPRINT), (name, dep)
            fingerprinted.add(dep.removesuffix("/" + FINGERPRINT))
    assert fingerprinted == {"data/prepared", "data/masks", "data/eval", *(f"data/runs/{m}" for m in
                             ("baseline", "spf", "spf_no_prior", "control", "no_prior", "spd_sgr"))}
    assert fingerprinted <= every_out

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


def test_stages_read_data_folders_through_their_fingerprints():
    """A stage that named a whole data folder would make DVC walk it again (the no-op cost at paper size), and
    one that named a fingerprint no stage writes would never re-run."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    folders = set()
    for stage in stages.values():
        folders |= {next(iter(o)) if isinstance(o, dict) else o for o in stage.get("outs", [])}
    data_folders = {f for f in folders if f.startswith(("data/prepared", "data/masks"))}
    assert data_folders == {"data/prepared", "data/masks"}
    for name, stage in stages.items():
        for dep in stage["deps"]:
            if dep.startswith(("data/prepared", "data/masks")):
                assert dep.endswith("/" + FINGERPRINT), (name, dep)
                assert dep.removesuffix("/" + FINGERPRINT) in data_folders

"""``torchrun -m sam4ir.stages.sam_masks``: two CPU processes, each with its own tiny random SAM, split the source
images by rank and write the same label maps as one process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sam4ir
from sam4ir.stages import sam_masks
from test_sam import sidd_stage, tiny_ckpt  # noqa: F401  (fixtures)


def _maps(masks: Path) -> dict[str, bytes]:
    return {p.relative_to(masks).as_posix(): p.read_bytes() for p in sorted(masks.glob("*/*.png"))}


def test_torchrun_two_processes_write_the_maps_of_one(sidd_stage):  # noqa: F811
    masks = sidd_stage / "data" / "masks" / "denoise"
    sam_masks.main(["--task", "denoise"])
    one = _maps(masks)
    assert len(one) == 29
    shutil.rmtree(masks)
    env = {**os.environ, "PYTHONPATH": str(Path(sam4ir.__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           "-m", "sam4ir.stages.sam_masks", "--task", "denoise"],
                          capture_output=True, text=True, env=env, timeout=300, cwd=sidd_stage)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _maps(masks) == one
    summary = json.loads((masks / "summary.json").read_text())
    assert summary["complete"] and summary["label_maps"] == 29  # rank 0 counted after the other had finished
    log = json.loads((sidd_stage / "data" / "logs" / "sam_masks" / "denoise.json").read_text())
    assert log == {**log, "processes": 2, "segmented": 5, "written": 29}  # each source once, over both ranks
    assert proc.stdout.count("sam_masks denoise: 29/29 label maps") == 1  # only rank 0 reports

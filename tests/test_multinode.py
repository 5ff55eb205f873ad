"""Several machines: two ``torchrun`` launchers, each a node of one process (``--nnodes 2 --nproc-per-node 1``, c10d
rendezvous on 127.0.0.1, gloo on CPU), run ``sam_masks`` and ``train_baseline`` in a clone of the team project and
give what the project's one-process ``dvc repro`` gave: the same label maps, byte for byte, and the same weights up
to float rounding (each node averages its half of every batch's gradients with the other's)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from teams_helpers import ENV, TASK, clone, free_port, shared_project

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return shared_project(tmp_path_factory)


@pytest.fixture(scope="module")
def node_tree(project, tmp_path_factory) -> Path:
    """The folder both nodes work in (on a cluster: the shared file system), with the project's outputs."""
    return clone(project, tmp_path_factory.mktemp("nodes") / "tree")


def launch_two_nodes(cwd: Path, module: str) -> list[str]:
    """``torchrun`` twice, as on two machines: what each node printed."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}", "--rdzv-id", module,
           "-m", module]
    env = {**ENV, "PYTHONPATH": str(cwd / "src")}  # the stages import the tree's own code
    nodes = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    try:
        outs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    for node, out in zip(nodes, outs):
        assert node.returncode == 0, out[-3000:]
    return outs


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_two_nodes_write_the_label_maps_of_one_process(project, node_tree):
    masks = f"data/masks/{TASK}"
    shutil.rmtree(node_tree / masks)
    outs = launch_two_nodes(node_tree, "sam4ir.stages.sam_masks")
    assert files(node_tree / masks) == files(project / masks)
    log = json.loads((node_tree / "data" / "logs" / "sam_masks" / f"{TASK}.json").read_text())
    assert log["processes"] == 2 and log["written"] == log["segmented"] > 0  # each source once, over both nodes
    assert sum(out.count(f"sam_masks {TASK}: ") for out in outs) == 1  # only global rank 0 reports


def test_two_nodes_train_the_weights_of_one_process(project, node_tree):
    for out in ("data/runs/baseline", "data/live/baseline", "data/.resume"):
        shutil.rmtree(node_tree / out, ignore_errors=True)
    launch_two_nodes(node_tree, "sam4ir.stages.train_baseline")
    model = f"data/runs/baseline/{TASK}/model.pt"
    ours, one = (torch.load(root / model, weights_only=True) for root in (node_tree, project))
    assert ours.keys() == one.keys() and ours["model"] == one["model"] and ours["model_args"] == one["model_args"]
    assert ours["params"].keys() == one["params"].keys()
    for key, value in one["params"].items():
        assert torch.allclose(ours["params"][key], value, atol=1e-5), key
    live = f"data/live/baseline/{TASK}/metrics.json"
    ours, one = (json.loads((root / live).read_text()) for root in (node_tree, project))
    assert ours["step"] == one["step"] and ours["val_psnr"] == pytest.approx(one["val_psnr"], abs=1e-3)

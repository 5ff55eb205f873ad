"""GPU nodes without internet and with their own torch (docs/teams.md): on a connected machine, `pip download` of
requirements-notorch.txt (every requirement but torch and torchvision) into a wheel folder; on the node, a venv that
sees the site's torch installs from that folder alone (`pip install --no-index --find-links`), then sam4ir itself;
the GPU check runs there with the torch it found.

The site's torch is this interpreter's torch and torchvision with what they need, linked into a folder the new venv
reads as site packages (as `python -m venv --system-site-packages` on a cluster's Python with torch would): pip must
keep it, not install another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from teams_helpers import REPO, copy_sources

pytestmark = pytest.mark.slow

SITE_TORCH = ("torch", "torchvision")


def link_site_torch(site: Path) -> set[str]:
    """Link torch, torchvision and their requirements (recursively, with the extras they ask for) from this
    interpreter into ``site``; the distributions linked, by canonical name."""
    site.mkdir()
    todo, linked = [(name, frozenset()) for name in SITE_TORCH], set()
    while todo:
        name, extras = todo.pop()
        dist = distribution(name)
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((req.name, frozenset(req.extras)))
        name = canonicalize_name(dist.metadata["Name"])
        if name in linked:
            continue
        linked.add(name)
        for top in {file.parts[0] for file in dist.files or [] if file.parts[0] != ".."}:
            if not (site / top).exists():  # namespace folders (nvidia/) hold several distributions
                (site / top).symlink_to(Path(dist.locate_file(top)))
    return linked


def installed_by_pip(log: str) -> set[str]:
    """The distributions pip's ``Successfully installed a-1.0 b-2.0`` lines name, by canonical name."""
    return {canonicalize_name(item.rsplit("-", 1)[0]) for line in log.splitlines()
            if line.startswith("Successfully installed ") for item in line.split()[2:]}


def offline_env() -> dict[str, str]:
    """No index, no pip configuration of this machine, and every proxy a closed port: nothing can be fetched; no
    PYTHONPATH either, so the node's venv imports what it installed, not the caller's checkout."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and "proxy" not in k.lower() and k != "PYTHONPATH"}
    dead = "http://127.0.0.1:9"
    return {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
            "http_proxy": dead, "https_proxy": dead, "OMP_NUM_THREADS": "1"}


def ok(cmd: list, cwd: Path, env: dict | None = None) -> str:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, cmd))}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("offline")
    wheels, site, venv, checkout = root / "wheels", root / "site", root / "venv", root / "sam4ir"
    # the connected machine: this machine's pip and registries, as configured
    ok([sys.executable, "-m", "pip", "download", "-q", "-d", wheels, "-r", REPO / "requirements-notorch.txt",
        "setuptools>=64", "wheel"], root)
    # the node: its torch, a venv that sees it, the project's files (a clone) and the wheel folder; no network
    linked = link_site_torch(site)
    ok([sys.executable, "-m", "venv", venv], root)
    packages = Path(ok([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                       root).strip())
    (packages / "site_torch.pth").write_text(f"{site}\n")
    copy_sources(checkout)
    # --no-compile: no bytecode written ahead of time (a shorter test); imports compile what they use
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--no-compile", "--no-index", "--find-links", wheels]
    installed = ok([*pip, "-r", "requirements-notorch.txt"], checkout, offline_env())
    installed += ok([*pip, "-e", "."], checkout, offline_env())
    return {"root": root, "site": site, "venv": venv, "checkout": checkout, "linked": linked,
            "installed": installed}


def test_the_wheel_folder_has_no_torch(node):
    names = {canonicalize_name(p.name.split("-")[0]) for p in (node["root"] / "wheels").iterdir()}
    assert "dvc" in names and "segment-anything" in names
    assert not names & {"torch", "torchvision"}


def test_the_node_keeps_its_torch_and_imports_everything(node):
    probe = ("import json, torch, torchvision, segment_anything, dvc, dvclive, sam4ir; "
             "print(json.dumps({m.__name__: m.__file__ for m in (torch, torchvision, sam4ir)}))")
    where = json.loads(ok([node["venv"] / "bin" / "python", "-c", probe], node["root"], offline_env()).splitlines()[-1])
    assert Path(where["torch"]).is_relative_to(node["site"]) and Path(where["torchvision"]).is_relative_to(node["site"])
    assert Path(where["sam4ir"]).is_relative_to(node["checkout"])
    installed = installed_by_pip(node["installed"])
    assert {"dvc", "segment-anything", "sam4ir"} <= installed and not installed & node["linked"]  # the site's kept
    assert {"torch", "torchvision", "numpy"} <= node["linked"]


def test_the_gpu_check_runs_with_the_torch_it_finds(node):
    python = node["venv"] / "bin" / "python"
    out = node["root"] / "gpu_check"
    log = ok([python, "benchmarks/gpu_check.py", "--tiny", "--sections", "sam_relaxed", "--out", out],
             node["checkout"], offline_env())
    import torch

    assert f"gpu_check: torch {torch.__version__} ({node['site'] / 'torch'}) accepted: " in log, log
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["errors"] == {} and report["env"]["torch"] == torch.__version__
    assert report["sam_relaxed"]["same_partitions_fp32"] is True

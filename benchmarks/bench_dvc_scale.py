"""DVC at paper size: hashing, no-op and transfer times for a prepared set of ~30k sub-image pairs and their masks.

    python benchmarks/bench_dvc_scale.py [--pairs 30608] [--side 16] [--consumers 3] [--deps folders|fingerprints]
                                         [--dir DIR] [--keep]

Builds, in a temporary folder, a git + DVC repository shaped like ours: a ``prepare`` stage writing
``data/prepared/t/train/{input,target}/<name>.png`` (``--pairs`` of each; 30,608 is NAFNet's count of SIDD
training sub-images), a ``masks`` stage reading that folder and writing one label map per pair to
``data/masks/t/train``, both outs ``persist: true`` as in dvc.yaml, and ``--consumers`` light stages that depend on
both folders, as train_baseline/control/no_prior/distill do (``--deps fingerprints``: on a small digest file
each producer writes into its folder instead, the fix for no-op time that grows with every mention of a folder). Then it times, each as its own ``dvc`` command:
the first ``dvc repro`` (the stages' own run time is reported apart, so the rest is DVC's hashing and caching),
a no-op ``dvc repro``, ``dvc status``, ``dvc push`` to a local remote, and ``dvc pull`` into a fresh ``git clone``
(then ``dvc status`` there, twice: the first one after a pull may rebuild DVC's state). Files are tiny
(``--side`` px PNGs): the figures are DVC's per-file cost; for real sizes add bytes / hashing throughput (md5 MB/s
here is printed too).
Prints figures only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

STAGE_SCRIPT = '''
"""Write tiny PNGs: prepare (input/target pairs) or masks (one 16-bit label map per prepared pair), and
fingerprint.json: a digest of every file written, computed from the bytes as they are written."""
import hashlib, json, sys, time
from pathlib import Path
import cv2, numpy as np
start = time.perf_counter()
what, out, pairs, side = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = np.random.default_rng(0 if what == "prepare" else 1)
folders = ["train/input", "train/target"] if what == "prepare" else ["train"]
for sub in folders:
    (out / sub).mkdir(parents=True, exist_ok=True)
digest = hashlib.sha256()
for i in range(pairs):
    for sub in folders:
        dtype = np.uint8 if what == "prepare" else np.uint16
        img = rng.integers(0, 200, (side, side) + ((3,) if what == "prepare" else ()), dtype=dtype)
        data = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1].tobytes()
        (out / sub / f"{i:06d}.png").write_bytes(data)
        digest.update(f"{sub}/{i:06d}.png\\0".encode() + hashlib.sha256(data).digest())
(out / "fingerprint.json").write_text(json.dumps({"files": pairs * len(folders), "sha256": digest.hexdigest()}))
Path(f"{what}.seconds").write_text(str(time.perf_counter() - start))
'''


def dvc_yaml(pairs: int, side: int, consumers: int, deps: str) -> str:
    """Stages declared as ours are: directory outs with ``persist: true``; later stages depend on both folders
    (``deps='folders'``, as dvc.yaml does), or on the small fingerprint file each producer writes inside its
    folder (``deps='fingerprints'``: DVC then walks each folder once, as an out, instead of once per mention)."""
    prepared, masks = (("data/prepared/t", "data/masks/t") if deps == "folders" else
                       ("data/prepared/t/fingerprint.json", "data/masks/t/fingerprint.json"))
    stages = {
        "prepare": {"cmd": f"python make.py prepare data/prepared/t {pairs} {side}", "deps": ["make.py"],
                    "outs": [{"data/prepared/t": {"persist": True}}]},
        "masks": {"cmd": f"python make.py masks data/masks/t {pairs} {side}", "deps": ["make.py", prepared],
                  "outs": [{"data/masks/t": {"persist": True}}]},
    }
    for k in range(consumers):
        stages[f"train{k}"] = {"cmd": f"python -c \"open('out{k}.txt', 'w').write('ok')\"",
                               "deps": [prepared, masks], "outs": [f"out{k}.txt"]}
    return json.dumps({"stages": stages}, indent=1)  # JSON is YAML


def timed(cmd: list[str], cwd: Path) -> float:
    """Wall seconds of ``cmd``; a failure stops the benchmark with the command's last line."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
        sys.exit(f"bench_dvc_scale: {' '.join(cmd)} failed in {cwd}: {last}")
    return seconds


def md5_mb_per_s(mib: int = 256) -> float:
    """hashlib md5 throughput on this machine, MB/s (what DVC's hashing of real-sized files costs per byte)."""
    data = os.urandom(1 << 20)
    h = hashlib.md5()
    start = time.perf_counter()
    for _ in range(mib):
        h.update(data)
    return mib * 1.048576 / (time.perf_counter() - start)


def run(root: Path, args: argparse.Namespace) -> dict:
    dvc = [sys.executable, "-m", "dvc"]
    repo, remote = root / "repo", root / "remote"
    repo.mkdir()
    (repo / "make.py").write_text(textwrap.dedent(STAGE_SCRIPT))
    (repo / "dvc.yaml").write_text(dvc_yaml(args.pairs, args.side, args.consumers, args.deps))
    for cmd in (["git", "init", "-q"], ["git", "config", "user.email", "bench@example.invalid"],
                ["git", "config", "user.name", "bench"], dvc + ["init", "-q"],
                dvc + ["remote", "add", "-d", "local", str(remote)]):
        timed(cmd, repo)
    fig: dict = {"pairs": args.pairs, "files": 3 * args.pairs, "consumers": args.consumers, "deps": args.deps}
    fig["first_repro_s"] = timed(dvc + ["repro", "-q"], repo)
    fig["stage_cmds_s"] = sum(float((repo / f"{w}.seconds").read_text()) for w in ("prepare", "masks"))
    fig["first_repro_dvc_s"] = fig["first_repro_s"] - fig["stage_cmds_s"]
    fig["noop_repro_s"] = timed(dvc + ["repro", "-q"], repo)
    fig["status_s"] = timed(dvc + ["status", "-q"], repo)
    timed(["git", "add", "-A"], repo)
    timed(["git", "commit", "-qm", "bench"], repo)
    fig["push_s"] = timed(dvc + ["push", "-q"], repo)
    clone = root / "clone"  # a fresh clone, as a user on another machine would pull
    timed(["git", "clone", "-q", str(repo), str(clone)], root)
    fig["pull_s"] = timed(dvc + ["pull", "-q"], clone)
    fig["status_after_pull_s"] = timed(dvc + ["status", "-q"], clone)
    fig["status_after_pull_again_s"] = timed(dvc + ["status", "-q"], clone)
    fig["md5_mb_per_s"] = md5_mb_per_s()
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=30608, help="prepared pairs (each: input, target, mask)")
    parser.add_argument("--side", type=int, default=16, help="side of the tiny PNGs")
    parser.add_argument("--consumers", type=int, default=3, help="stages depending on both folders")
    parser.add_argument("--deps", choices=("folders", "fingerprints"), default="folders",
                        help="what later stages depend on: the folders (as dvc.yaml) or a fingerprint file in each")
    parser.add_argument("--dir", help="parent folder for the temporary repository (default: the system's temp)")
    parser.add_argument("--keep", action="store_true", help="keep the repository (its path is printed)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_dvc_", dir=args.dir))
    try:
        fig = run(root, args)
        for key, value in fig.items():
            print(f"{key:28} {value:10.2f}" if isinstance(value, float) else f"{key:28} {value:>10}")
        print(json.dumps(fig), flush=True)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)  # several copies of every file: this takes a while


if __name__ == "__main__":
    main()

"""Stage ``code``: for each stage of dvc.yaml, one small file standing for exactly the code it runs.

DVC checks every code dependency of every stage on every command, a no-op ``dvc repro`` included, at ~4 ms each
(a folder or a file alike): the 79 code deps of our ten stages were a third of the no-op's own work (README, "no-op").
This stage depends on ``src/sam4ir`` once and writes ``data/code/<stage>.json``: the stage's CODE entry and the
fingerprint (:func:`sam4ir.fingerprint.digest_files`) of the files under it. Each stage depends on its own file, which
changes only when that stage's code does: an edit re-runs this stage (about a second) and the stages whose code it
touched, nothing else — as the folder lists in dvc.yaml did, walked once instead of ten times.

    python -m sam4ir.stages.code        # what dvc.yaml runs; no params
"""

from __future__ import annotations

from pathlib import Path

import sam4ir
from sam4ir.errors import Sam4irError
from sam4ir.fingerprint import digest_files
from sam4ir.io import write_json
from sam4ir.stages import command_parser, run_stage

OUT = Path("data/code")
TRAINING = ("models", "data", "method", "training", "params", "fingerprint.py", "stages/shared", "stages/run.py")
# The code each stage runs, under src/sam4ir: its entry point and what decides its outputs (not io, errors, progress).
CODE: dict[str, tuple[str, ...]] = {
    "prepare_data": ("data", "datasets", "download.py", "fingerprint.py", "params", "stages/shared",
                     "stages/prepare_data.py"),
    "sam_masks": ("sam", "download.py", "fingerprint.py", "params", "stages/shared", "stages/sam_masks.py"),
    "train_baseline": (*TRAINING, "stages/train_baseline.py"),
    "spf": (*TRAINING, "stages/spf.py"),
    "spf_no_prior": (*TRAINING, "stages/spf.py"),
    "control": (*TRAINING, "stages/distill.py"),
    "no_prior": (*TRAINING, "stages/distill.py"),
    "distill": (*TRAINING, "stages/distill.py"),
    "evaluate": ("data/paired.py", "metrics.py", "scores.py", "inference.py", "segmentation_check.py", "method/spf.py",
                 "fingerprint.py", "sam", "params", "stages/shared", "stages/sam_masks.py", "stages/evaluate.py"),
    "report": ("report", "cost.py", "method/spf.py", "params", "stages/shared", "stages/evaluate.py",
               "stages/report.py"),
}


def code_files(root: Path, entries: tuple[str, ...]) -> list[Path]:
    """The files under ``entries`` (paths relative to ``root``), sorted, without bytecode; a missing entry is an error
    (a renamed module must not silently drop out of its stage's fingerprint)."""
    files: set[Path] = set()
    for entry in entries:
        path = root / entry
        if path.is_file():
            files.add(path)
        elif path.is_dir():
            files |= {p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
        else:
            raise Sam4irError(f"{path}: named in sam4ir.stages.code.CODE, but not a file or folder")
    return sorted(files)


def write_code_fingerprints(root: Path, out: Path, code: dict[str, tuple[str, ...]] = CODE) -> None:
    """``<out>/<stage>.json`` = {code: the stage's entries, files, bytes, sha256} for every stage of ``code``."""
    for stage, entries in code.items():
        write_json(out / f"{stage}.json", {"code": list(entries), **digest_files(root, code_files(root, entries))})


def main() -> None:
    command_parser(__doc__).parse_args()
    write_code_fingerprints(Path(sam4ir.__file__).parent, OUT)


if __name__ == "__main__":
    run_stage(main)

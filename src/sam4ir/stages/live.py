"""Training curves through dvclive, so ``dvc plots`` and ``dvc exp show`` read them."""

from __future__ import annotations

import shutil
from pathlib import Path

from dvclive import Live

from sam4ir.io import atomic_path

def open_live(path: Path, resumed_at: int, backup: Path | None = None) -> Live:
    """dvclive logger writing under ``path``; DVC stages declare its metrics and plots themselves.

    DVC deletes a stage's outs before it re-runs the stage, curves included, so a killed run's rows would be lost
    when it resumes: :func:`live_logger` mirrors every row into ``backup`` (beside the resume state, outside every
    out). A run resumed from its checkpoint at step ``resumed_at`` gets back every row up to that step, and drops
    the rows the killed run logged after it, so its curves equal an uninterrupted run's. A fresh run (``resumed_at``
    0) starts an empty backup.
    """
    plots = path / "plots" / "metrics"
    if backup is not None:
        if resumed_at:
            for saved in backup.glob("*.tsv"):
                if not (plots / saved.name).is_file():
                    (plots / saved.name).parent.mkdir(parents=True, exist_ok=True)
                    (plots / saved.name).write_bytes(saved.read_bytes())
        else:
            shutil.rmtree(backup, ignore_errors=True)
    if resumed_at:
        for tsv in [*plots.glob("*.tsv"), *(backup.glob("*.tsv") if backup is not None else [])]:
            _keep_rows_up_to(tsv, resumed_at)
    return Live(dir=str(path), resume=resumed_at > 0, save_dvc_exp=False, dvcyaml=False)


def _keep_rows_up_to(tsv: Path, step: int) -> None:
    header, *rows = tsv.read_text().splitlines(keepends=True)
    column = header.rstrip("\n").split("\t").index("step")
    kept = [r for r in rows if int(r.split("\t")[column]) <= step]
    with atomic_path(tsv) as tmp:
        tmp.write_text("".join([header, *kept]))


def live_logger(live: Live, backup: Path | None = None):
    """``log(step, record)`` for :func:`sam4ir.train.fit`: every value becomes a dvclive curve; the summary
    (``metrics.json``) holds what a reader compares runs by, the monitor's last and best validation PSNR,
    not the last learning rate or loss. Each row is also appended to ``backup`` (see :func:`open_live`)."""
    plots = Path(live.plots_dir) / "metrics"

    def log(step: int, record: dict) -> None:
        live.step = step
        for key, value in record.items():
            live.log_metric(key, value)
            if backup is not None:
                _mirror(plots / f"{key}.tsv", backup / f"{key}.tsv")
        live.summary = val_psnr_summary(plots / "val_psnr.tsv")
        live.make_summary()
    return log


def _mirror(tsv: Path, copy: Path) -> None:
    """Append the row dvclive just wrote to ``tsv`` to ``copy`` (the whole file the first time)."""
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(tsv.read_bytes())
        return
    with open(tsv, "rb") as f:
        f.seek(max(0, f.seek(0, 2) - 4096))
        last = f.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
    with open(copy, "ab") as f:
        f.write(last + b"\n")


def val_psnr_summary(tsv: Path) -> dict:
    """Last and best ``val_psnr`` of a dvclive TSV (a resumed run's earlier rows included), and the best's step."""
    if not tsv.is_file():
        return {}
    header, *rows = [line.split("\t") for line in tsv.read_text().splitlines()]
    steps = [int(r[header.index("step")]) for r in rows]
    values = [float(r[header.index("val_psnr")]) for r in rows]
    if not values:
        return {}
    best = max(range(len(values)), key=values.__getitem__)
    return {"val_psnr": values[-1], "val_psnr_best": values[best], "val_psnr_best_step": steps[best]}

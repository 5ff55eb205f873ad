"""Training curves through dvclive, so ``dvc plots`` and ``dvc exp show`` read them."""

from __future__ import annotations

from pathlib import Path

from dvclive import Live

from sam4ir.io import atomic_path

def open_live(path: Path, resumed_at: int) -> Live:
    """dvclive logger writing under ``path``; DVC stages declare its metrics and plots themselves.

    A run resumed from its checkpoint at step ``resumed_at`` first drops the rows the killed run logged after it,
    so every step appears once in the curves.
    """
    if resumed_at:
        for tsv in (path / "plots" / "metrics").glob("*.tsv"):
            header, *rows = tsv.read_text().splitlines(keepends=True)
            step = header.rstrip("\n").split("\t").index("step")
            kept = [r for r in rows if int(r.split("\t")[step]) <= resumed_at]
            with atomic_path(tsv) as tmp:
                tmp.write_text("".join([header, *kept]))
    return Live(dir=str(path), resume=resumed_at > 0, save_dvc_exp=False, dvcyaml=False)


def live_logger(live: Live):
    """``log(step, record)`` for :func:`sam4ir.train.fit`: every value becomes a dvclive curve; the summary
    (``metrics.json``) holds what a reader compares runs by, the monitor's last and best validation PSNR,
    not the last learning rate or loss."""
    def log(step: int, record: dict) -> None:
        live.step = step
        for key, value in record.items():
            live.log_metric(key, value)
        live.summary = val_psnr_summary(Path(live.plots_dir) / "metrics" / "val_psnr.tsv")
        live.make_summary()
    return log


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

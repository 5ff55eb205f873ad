"""Figures: training curves and loss terms from dvclive logs, and image grids of restored test images."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sam4ir.io import atomic_path, read_image, write_image  # noqa: E402


def read_live_metric(live_dir: Path, name: str) -> pd.DataFrame:
    """One dvclive metric series (columns step, value); empty if the run never logged it."""
    path = live_dir / "plots" / "metrics" / f"{name}.tsv"
    if not path.is_file():
        return pd.DataFrame(columns=["step", "value"])
    df = pd.read_csv(path, sep="\t")
    return df.rename(columns={name: "value"})[["step", "value"]]


def save_figure(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)


def line_facets(df: pd.DataFrame, *, y: str, hue: str, col: str, path: Path, title: str,
                row: str | None = None) -> None:
    """Seaborn line plots of ``y`` over ``step``, one panel per ``col`` (and ``row``) value, each panel on its own
    y axis (loss terms of very different scales stay readable)."""
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=df, x="step", y=y, hue=hue, col=col, row=row, kind="line", height=2.6 if row else 3.2,
                       aspect=1.3, facet_kws={"sharey": False})
    grid.figure.suptitle(title, y=1.03)
    save_figure(grid.figure, path)


def image_grid(rows: list[dict[str, Path]], columns: list[str], labels: dict[str, str], path: Path,
               zoom: int = 0) -> None:
    """Rows of images (column name -> file), columns in the given order; with ``zoom`` > 0 each image gets
    a second row showing its centre ``zoom`` x ``zoom`` crop enlarged, where restoration differences show."""
    per_row = 2 if zoom else 1
    fig, axes = plt.subplots(len(rows) * per_row, len(columns), squeeze=False,
                             figsize=(2.2 * len(columns), 2.2 * len(rows) * per_row))
    for r, row in enumerate(rows):
        for c, col in enumerate(columns):
            img = read_image(row[col])
            views = [img]
            if zoom:
                h, w = img.shape[:2]
                top, left = max(0, (h - zoom) // 2), max(0, (w - zoom) // 2)
                views.append(img[top:top + zoom, left:left + zoom])
            for v, view in enumerate(views):
                ax = axes[r * per_row + v][c]
                ax.imshow(view, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if r == 0 and v == 0:
                    ax.set_title(labels.get(col, col), fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


ERROR_GAIN = 4  # absolute errors are small; x4 makes a 16-level error visible, and every panel shares the scale


def restoration_panels(rows: list[dict[str, Path]], columns: list[str], folder: Path, task: str) -> None:
    """DVC image plots: ``<task>_<image>_<column>.png`` for each image and column, and beside every column but
    the target its absolute-error map against the target (``..._error.png``, x ``ERROR_GAIN``, same scale for all
    methods), so `dvc plots diff exp-a exp-b` puts two experiments' restorations and errors side by side."""
    for row in rows:
        target = read_image(row["target"]).astype(np.int16)
        stem = row["target"].stem
        for col in columns:
            img = read_image(row[col])
            write_image(folder / f"{task}_{stem}_{col}.png", img)
            if col != "target":
                error = np.clip(np.abs(img.astype(np.int16) - target) * ERROR_GAIN, 0, 255).astype(np.uint8)
                write_image(folder / f"{task}_{stem}_{col}_error.png", error)

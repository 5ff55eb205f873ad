"""Figures: training curves and loss terms from dvclive logs, and image grids of restored test images."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from sam4ir.io import atomic_path, read_image  # noqa: E402


def read_live_metric(live_dir: Path, name: str) -> pd.DataFrame:
    """One dvclive metric series (columns step, value); empty if the run never logged it."""
    path = live_dir / "plots" / "metrics" / f"{name}.tsv"
    if not path.is_file():
        return pd.DataFrame(columns=["step", "value"])
    df = pd.read_csv(path, sep="\t")
    return df.rename(columns={name: "value"})[["step", "value"]]


def save_figure(fig: plt.Figure, path: Path) -> None:
    """PNG at a fixed resolution, written atomically, with no metadata (matplotlib would stamp its version): the
    same figure gives the same bytes."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png", metadata={"Software": None})
    plt.close(fig)


def line_facets(df: pd.DataFrame, *, y: str, hue: str, col: str, path: Path, title: str,
                row: str | None = None, y_label: str | None = None) -> None:
    """Seaborn line plots of ``y`` over ``step``, one panel per ``col`` (and ``row``) value, each panel on its own
    x and y axis (loss terms of very different scales, and runs of different lengths such as the SPF teacher's and
    the distillation's, stay readable), points marked (a series of one point still shows); ``y_label`` names the
    y axis (else ``y``)."""
    sns.set_theme(style="whitegrid")
    grid = sns.relplot(data=df, x="step", y=y, hue=hue, col=col, row=row, kind="line", height=2.6 if row else 3.2,
                       aspect=1.3, marker="o", markersize=3, facet_kws={"sharey": False, "sharex": False})
    grid.set_axis_labels("step", y_label or y)
    grid.figure.suptitle(title, y=1.03)
    save_figure(grid.figure, path)


# method -> (line style, marker, marker size, hollow): runs that end up on the same values stay visible side by side
CURVE_STYLES = {"baseline": ("-", "", 0, False), "control": ("--", "s", 7, True), "no_prior": (":", "^", 6, True),
                "spd_sgr": ("-", "o", 3, False)}


def training_curves(val: pd.DataFrame, path: Path, title: str, phases: dict[str, str]) -> None:
    """Validation PSNR over steps: one column per task, one row per phase (``phases``: name -> its x axis label;
    e.g. the baseline's training, then the distillation runs with step 0 at the baseline's end), each row on its
    own axes so a short phase is as wide as a long one; every method with its own line style and marker
    (:data:`CURVE_STYLES`), so curves that coincide are all seen. ``val``: task, method, phase, step, value."""
    tasks, methods = list(dict.fromkeys(val.task)), list(dict.fromkeys(val.method))
    rows = [p for p in phases if (val.phase == p).any()]
    colours = dict(zip(methods, sns.color_palette("deep", len(methods))))
    sns.set_theme(style="whitegrid")
    fig, axes = plt.subplots(len(rows), len(tasks), squeeze=False, figsize=(4.2 * len(tasks), 3.0 * len(rows)))
    for r, phase in enumerate(rows):
        for c, task in enumerate(tasks):
            ax = axes[r][c]
            part = val[(val.phase == phase) & (val.task == task)]
            for method in methods:
                curve = part[part.method == method].sort_values("step")
                if curve.empty:
                    continue
                line, marker, size, hollow = CURVE_STYLES.get(method, ("-", "o", 4, False))
                ax.plot(curve.step, curve.value, linestyle=line, marker=marker or None, markersize=size,
                        markerfacecolor="none" if hollow else colours[method], color=colours[method], label=method)
            ax.set_title(f"{task}: {phase}", fontsize=10)
            ax.set_xlabel(phases[phase], fontsize=9)
            ax.set_ylabel("validation PSNR (dB)" if c == 0 else "", fontsize=9)
    handles = {h.get_label(): h for ax in axes.flat for h in ax.get_lines()}
    fig.legend([handles[m] for m in methods if m in handles], [m for m in methods if m in handles], title="method",
               loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


MAX_SCENES = 3  # scenes per task in a grid: a page of three tasks stays a few screens tall
ERROR_MAX = 64  # error maps: mean absolute error over channels, 0..64 levels of 255 (above saturates), one scale


def pick_scenes(names: list[str], k: int = MAX_SCENES) -> list[str]:
    """``k`` of the sorted scene names, evenly spread (first and last included), so a bounded grid still samples
    the whole test split rather than its first few images."""
    names = sorted(names)
    if len(names) <= k:
        return names
    return [names[round(i * (len(names) - 1) / (k - 1))] for i in range(k)] if k > 1 else names[:1]


def image_psnr(per_image_csv: Path) -> dict[tuple[str, str], float]:
    """(method, image name) -> PSNR from ``evaluate``'s ``per_image.csv``, for the grids' captions."""
    df = pd.read_csv(per_image_csv)
    return {(m, str(n)): float(v) for m, n, v in zip(df.method, df.name, df.psnr)}


def _centre(img: np.ndarray, crop: int) -> np.ndarray:
    """The centre ``crop`` x ``crop`` of ``img`` (all of it when smaller, or ``crop`` = 0)."""
    h, w = img.shape[:2]
    if not crop or (h <= crop and w <= crop):
        return img
    top, left = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
    return img[top:top + crop, left:left + crop]


def error_map(img: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Mean absolute error over the channels, in levels of 255 (H x W float)."""
    diff = np.abs(img.astype(np.float32) - target.astype(np.float32))
    return diff.mean(axis=2) if diff.ndim == 3 else diff


def scene_grid(scenes: list[dict[str, Path]], columns: list[str], labels: dict[str, str], path: Path, *,
               psnr: dict[tuple[str, str], float] | None = None, crop: int = 0) -> None:
    """The methods side by side, one band per scene (column name -> file; ``target`` among them): the images on top
    with each one's PSNR under it (``psnr``: (column, scene name) -> dB), and under each its error map against
    the target, every map on one scale (``ERROR_MAX``), so the eye compares columns. ``crop`` > 0 shows the centre
    ``crop`` x ``crop`` of larger images, where restoration differences are visible at this size."""
    size = 1.8
    fig, axes = plt.subplots(2 * len(scenes), len(columns), squeeze=False,
                             figsize=(size * len(columns), size * 2 * len(scenes) + 0.3))
    for s, scene in enumerate(scenes):
        name = scene["target"].stem
        target = _centre(read_image(scene["target"]), crop)
        for c, col in enumerate(columns):
            img = _centre(read_image(scene[col]), crop)
            top, bottom = axes[2 * s][c], axes[2 * s + 1][c]
            top.imshow(img, interpolation="nearest")
            if col != "target":
                shown = bottom.imshow(error_map(img, target), cmap="magma", vmin=0, vmax=ERROR_MAX,
                                      interpolation="nearest")
            if psnr and (col, name) in psnr:
                top.set_xlabel(f"{psnr[col, name]:.2f} dB", fontsize=8, labelpad=2)
            if s == 0:
                top.set_title(textwrap.fill(labels.get(col, col), 24), fontsize=8)
        axes[2 * s][0].set_ylabel(name, fontsize=8)
        axes[2 * s + 1][0].set_ylabel("|error|", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    for s in range(len(scenes)):  # the scale, in the target's empty error cell
        cell = axes[2 * s + 1][columns.index("target")]
        cell.axis("off")
        bar = fig.colorbar(shown, cax=cell.inset_axes([0.1, 0.05, 0.12, 0.9]))
        bar.ax.tick_params(labelsize=7)
        bar.set_label(f"mean |error| (levels of 255;\n≥ {ERROR_MAX} saturates)", fontsize=7)
    save_figure(fig, path)


def restoration_panels(scenes: list[dict[str, Path]], columns: list[str], labels: dict[str, str], folder: Path,
                       task: str, psnr: dict[tuple[str, str], float] | None = None, crop: int = 0) -> None:
    """DVC image plots: ``<task>_<scene>.png``, one :func:`scene_grid` per scene, so `dvc plots diff exp-a exp-b`
    puts two experiments' restorations and error maps of a scene side by side, one picture a scene."""
    for scene in scenes:
        scene_grid([scene], columns, labels, folder / f"{task}_{scene['target'].stem}.png", psnr=psnr, crop=crop)

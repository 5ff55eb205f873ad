"""The figures: restored-image grids (a bounded number of scenes, evenly spread over the test split; one band per
scene with the methods side by side and their error maps; one picture a scene for `dvc plots diff`), and the
training curves (the distillation phase on its own axes, every method visible, the same bytes twice)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image

from sam4ir.io import write_image
from sam4ir.report.figures import (MAX_SCENES, error_map, image_psnr, line_facets, pick_scenes, restoration_panels,
                                   scene_grid, training_curves)

COLUMNS = ["input", "baseline", "spd_sgr", "target"]


def _scenes(folder: Path, names: list[str], size: int = 48) -> list[dict[str, Path]]:
    rng = np.random.default_rng(0)
    scenes = []
    for name in names:
        scene = {}
        for col in COLUMNS:
            path = folder / col / f"{name}.png"
            write_image(path, (rng.random((size, size, 3)) * 255).astype(np.uint8))
            scene[col] = path
        scenes.append(scene)
    return scenes


def test_scenes_are_bounded_and_spread_over_the_split():
    names = [f"scene_{i:03d}" for i in range(99)]
    picked = pick_scenes(list(reversed(names)))
    assert len(picked) == MAX_SCENES and picked[0] == "scene_000" and picked[-1] == "scene_098"
    assert pick_scenes(names, 3) == ["scene_000", "scene_049", "scene_098"]
    assert pick_scenes(names[:2]) == names[:2]


def test_error_map_is_the_mean_absolute_error_over_channels():
    img = np.zeros((2, 2, 3), np.uint8)
    target = np.full((2, 2, 3), [30, 0, 0], np.uint8)
    assert np.allclose(error_map(img, target), 10.0) and error_map(img, target).shape == (2, 2)


def test_grid_is_one_band_per_scene(tmp_path):
    scenes = _scenes(tmp_path, ["a", "b", "c"])
    psnr = {("baseline", "a"): 30.0}
    scene_grid(scenes[:1], COLUMNS, {}, tmp_path / "one.png", psnr=psnr)
    scene_grid(scenes, COLUMNS, {}, tmp_path / "three.png", psnr=psnr)
    (w1, h1), (w3, h3) = Image.open(tmp_path / "one.png").size, Image.open(tmp_path / "three.png").size
    assert abs(w1 - w3) <= 2 and 2.5 * h1 < h3 < 3.5 * h1  # one band (images + error maps) per scene
    assert h3 < 2000  # three scenes of four columns stay one screen or two


def test_dvc_panels_are_one_picture_per_scene(tmp_path):
    scenes = _scenes(tmp_path / "in", ["a", "b"], size=300)
    restoration_panels(scenes, COLUMNS, {}, tmp_path / "restored", "derain", crop=64)
    assert sorted(p.name for p in (tmp_path / "restored").iterdir()) == ["derain_a.png", "derain_b.png"]


def test_image_psnr_reads_evaluates_per_image_scores(tmp_path):
    pd.DataFrame({"task": ["derain"] * 2, "method": ["baseline", "spd_sgr"], "set": ["test"] * 2,
                  "name": ["scene_000", "scene_000"], "psnr": [25.5, 26.0]}).to_csv(tmp_path / "p.csv", index=False)
    assert image_psnr(tmp_path / "p.csv") == {("baseline", "scene_000"): 25.5, ("spd_sgr", "scene_000"): 26.0}


def _curves() -> pd.DataFrame:
    """Validation PSNR as the report reads it: a long baseline, then short runs started from its end, two of them
    on the very same values (so one would hide the other without its own style)."""
    rows = [("derain", "baseline", "baseline training", s, 20 + s / 100) for s in range(50, 1250, 50)]
    for method, shift in (("control", 0.0), ("no_prior", 0.0), ("spd_sgr", 0.05)):
        rows += [("derain", method, "distillation", s, 32 + shift + s / 1000) for s in (0, 50, 100)]
    return pd.DataFrame(rows, columns=["task", "method", "phase", "step", "value"])


def test_training_curves_give_distillation_its_own_axes_and_every_method_a_style(tmp_path, monkeypatch):
    phases = {"baseline training": "training step", "distillation": "step after the baseline's end"}
    figures, original = [], plt.Figure.savefig

    def keep(fig, *args, **kwargs):
        figures.append(fig)
        return original(fig, *args, **kwargs)

    monkeypatch.setattr(plt.Figure, "savefig", keep)
    training_curves(_curves(), tmp_path / "a.png", "validation PSNR", phases)
    training_curves(_curves(), tmp_path / "b.png", "validation PSNR", phases)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()  # no date, no version stamp
    top, bottom = figures[0].axes[:2]
    assert top.get_ylabel() == bottom.get_ylabel() == "validation PSNR (dB)"
    assert bottom.get_xlim()[1] < 200 < top.get_xlim()[1]  # the 100 distillation steps span their own axis
    styles = {line.get_label(): (line.get_linestyle(), line.get_marker()) for line in bottom.get_lines()}
    assert set(styles) == {"control", "no_prior", "spd_sgr"} and len(set(styles.values())) == 3
    (legend,) = figures[0].legends
    assert [t.get_text() for t in legend.get_texts()] == ["baseline", "control", "no_prior", "spd_sgr"]


def test_loss_terms_give_each_run_its_own_x_axis_and_show_a_single_point(tmp_path, monkeypatch):
    """The teacher's 300 SPF steps beside the student's 100 distillation steps: neither squeezed by the other's
    axis; a term logged once is still drawn."""
    terms = pd.DataFrame([("derain", "spd", s, 0.05 - s / 1e4) for s in range(10, 110, 10)]
                         + [("derain", "teacher recon2 (spf)", s, -18 - s / 100) for s in range(10, 310, 10)]
                         + [("derain", "sgr", 100, 0.04)], columns=["task", "term", "step", "value"])
    figures, original = [], plt.Figure.savefig
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, *a, **k: (figures.append(fig), original(fig, *a, **k)))
    line_facets(terms, y="value", hue="term", col="task", row="term", path=tmp_path / "t.png", title="t",
                y_label="loss term")
    spd, teacher, sgr = figures[0].axes
    assert spd.get_xlim()[1] < 150 < teacher.get_xlim()[1] and spd.get_ylabel() == "loss term"
    assert [line.get_marker() for line in sgr.get_lines() if len(line.get_xdata())] == ["o"]

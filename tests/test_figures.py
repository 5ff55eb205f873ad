"""The restored-image grids: a bounded number of scenes, evenly spread over the test split; one band per scene
with the methods side by side and their error maps; one picture a scene for `dvc plots diff`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from sam4ir.io import write_image
from sam4ir.report.figures import (MAX_SCENES, error_map, image_psnr, pick_scenes, restoration_panels,
                                   scene_grid)

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

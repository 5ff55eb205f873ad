"""The params schema: every bad value the issue tracker listed fails in one line naming its key, before a stage
reads any data; the shipped params.yaml and every combination the README suggests pass."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from sam4ir.params import config
from sam4ir.errors import Sam4irError
from sam4ir.params.schema import parse_params, start_trace, stop_trace

REPO = Path(__file__).resolve().parents[1]
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def with_value(key: str, value: object) -> dict:
    tree = copy.deepcopy(PARAMS)
    *parents, last = key.split(".")
    node = tree
    for part in parents:
        node = node[part]
    node[last] = value
    return tree


def test_shipped_params_pass():
    parse_params(copy.deepcopy(PARAMS), "params.yaml")


@pytest.mark.parametrize("key, value", [
    ("model.name", "hinet"), ("model.name", "restormer"), ("sam.backend", "oracle"), ("sam.backend", "shuffled"),
    ("distill.sgr_weight", 0), ("train.device", "cuda:1"), ("data.source", "download"), ("spf.prior", "both"),
    ("train.seed", 2), ("distill.teacher", "joint"), ("distill.teacher_input", "baseline"), ("distill.init", "scratch"),
])
def test_values_the_readme_suggests_pass(key, value):
    parse_params(with_value(key, value), "params.yaml")


@pytest.mark.parametrize("key, value, reason", [
    ("train.lr", -1, "greater than 0"),
    ("train.lr", float("nan"), "finite"),
    ("train.lr", "4e-3", "valid number"),  # PyYAML reads 4e-3 (no dot) as a string
    ("train.weight_decay", -1, "greater than or equal to 0"),
    ("train.betas", [0.9], "at least 2"),
    ("train.betas", [0.9, 1.5], "less than 1"),
    ("train.device", "foo", "pattern"),
    ("train.num_workers", -1, "greater than or equal to 0"),
    ("train.min_lr", 1.0, "above train.lr"),
    ("spf.prior", "foo", "'mean'"),
    ("distill.analyzer", "vgg", "'ir_features'"),
    ("sam.model_type", "vit_x", "'vit_h'"),
    ("data.degradation.blur_kernel", [7, 3], "low end above"),
    ("tasks", ["derain", "derain"], "twice"),
    ("tasks", ["dehaze"], "'derain'"),
    ("model.name", "swinir", "nor an import path"),
    ("model.args.nafnet", {"widht": 8}, "no argument 'widht'"),
    ("eval.test_y_channel.derain", "yes", "valid boolean"),
    ("data.folder", {"derain": "/mnt/rain"}, "not inside data/real/"),
    ("data.folder", {"derain": "data/real/../../x"}, "not inside data/real/"),
])
def test_bad_values_are_one_line_naming_the_key(key, value, reason):
    with pytest.raises(Sam4irError) as err:
        parse_params(with_value(key, value), "params.yaml")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"params.yaml: param '{key}"), message  # or an item of it: 'train.betas.1'
    assert reason in message, message


def test_unknown_and_missing_keys_are_named():
    typo = with_value("train.ema_decay", 0.999)
    with pytest.raises(Sam4irError, match=r"unknown param 'train\.ema_decay'"):
        parse_params(typo, "params.yaml")
    missing = copy.deepcopy(PARAMS)
    del missing["distill"]["spd_weight"]
    with pytest.raises(Sam4irError, match=r"missing param 'distill\.spd_weight'"):
        parse_params(missing, "params.yaml")


def test_args_of_the_chosen_network_must_exist():
    tree = with_value("model.args", {"nafnet": {}})
    tree["model"]["name"] = "hinet"
    with pytest.raises(Sam4irError, match=r"param 'model' .*no entry for model.name 'hinet'"):
        parse_params(tree, "params.yaml")


def test_params_are_typed_frozen_and_keep_numbers_as_written():
    params = parse_params(copy.deepcopy(PARAMS), "params.yaml")
    assert params.distill.sgr_weight == PARAMS["distill"]["sgr_weight"] and params.where == "params.yaml"
    assert params.model.kwargs == PARAMS["model"]["args"][PARAMS["model"]["name"]]
    params.model.kwargs["width"] = -1  # a copy: the params are unchanged
    assert params.model.kwargs == PARAMS["model"]["args"][PARAMS["model"]["name"]]
    with pytest.raises(ValidationError, match="frozen"):
        params.distill.sgr_weight = 2.0
    # recorded in settings.json: an int must stay an int, or a new reader would change the outputs' bytes
    scale = params.sam.classical.scale
    assert scale == PARAMS["sam"]["classical"]["scale"] and type(scale) is type(PARAMS["sam"]["classical"]["scale"])
    assert type(parse_params(with_value("train.lr", 1), "params.yaml").train.lr) is int


def test_the_trace_records_the_leaves_read_and_the_sections_dumped():
    params = parse_params(copy.deepcopy(PARAMS), "params.yaml")
    params.train.lr  # before the trace: not recorded
    reads = start_trace()
    try:
        params.distill.sgr_weight, params.model.kwargs, params.sam.classical.model_dump(), params.snapshot()
        parse_params(copy.deepcopy(PARAMS), "other.yaml").eval.crop_border
    finally:
        stop_trace()
    params.train.seed  # after it: not recorded either
    name = PARAMS["model"]["name"]
    assert reads == {"distill.sgr_weight", "model.name", f"model.args.{name}", "sam.classical", "eval.crop_border"}


def test_load_params_checks_the_whole_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(with_value("spf.prior", "foo")))
    with pytest.raises(Sam4irError, match=rf"{path}: param 'spf\.prior'"):
        config.load_params(path)


def test_a_stage_fails_before_reading_data(tmp_path):
    """prepare_data, the DAG's first stage, refuses a bad key of a section it does not even use (spf), with one
    line and exit 1, and creates nothing: it never got to the data (how long that takes is a benchmark's
    business, not a test's: a timed assert fails on a loaded machine)."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(with_value("spf.prior", "foo")))
    done = subprocess.run([sys.executable, "-m", "sam4ir.stages.prepare_data", "--task", "derain"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "param 'spf.prior' = 'foo'" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("key, value, fits, message", [
    ("train.crop", 128, 96, "train.crop = 128 is larger than the training images (data.scenes.size = 96)"),
    ("eval.crop_border", 43, 42,
     "eval.crop_border = 43 leaves test images (data.scenes.size = 96) smaller than SSIM's 11x11 window"),
])
def test_what_the_offline_images_cannot_take_fails_with_the_params(key, value, fits, message):
    """Known from the params alone: refused by every stage's first step, not after data, masks and training."""
    assert PARAMS["data"]["source"] == "scenes" and PARAMS["data"]["scenes"]["size"] == 96
    with pytest.raises(Sam4irError) as err:
        parse_params(with_value(key, value), "params.yaml")
    assert str(err.value) == f"params.yaml: {message}"
    parse_params(with_value(key, fits), "params.yaml")  # the largest that fits


def test_a_device_this_machine_lacks_is_one_line_naming_the_key(tmp_path, monkeypatch):
    import argparse

    import torch

    from sam4ir.stages.shared.args import load_task_params

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for key, extra in (("train.device", {}), ("sam.device", {"sam.backend": "sam"})):
        tree = with_value(key, "cuda")
        for other, value in extra.items():
            section, name = other.split(".")
            tree[section][name] = value
        path = tmp_path / "params.yaml"
        path.write_text(yaml.safe_dump(tree))
        with pytest.raises(Sam4irError) as err:
            load_task_params(argparse.Namespace(params=str(path), task="derain"))
        assert str(err.value).startswith(f"{path}: param '{key}': 'cuda', but CUDA is not available")
    path.write_text(yaml.safe_dump(with_value("sam.device", "cuda")))  # not the sam backend: SAM never runs
    load_task_params(argparse.Namespace(params=str(path), task="derain"))


def test_data_max_pixels_limits_every_stage_s_decodes(tmp_path, monkeypatch):
    import argparse

    import numpy as np

    import sam4ir.io
    from sam4ir.io import read_image, write_image
    from sam4ir.stages.shared.args import load_task_params

    monkeypatch.setattr(sam4ir.io, "MAX_PIXELS", sam4ir.io.MAX_PIXELS)  # restored after the test
    image = tmp_path / "a.png"
    write_image(image, np.zeros((10, 20, 3), np.uint8))
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(with_value("data.max_pixels", 199)))
    load_task_params(argparse.Namespace(params=str(path), task="derain"))
    with pytest.raises(Sam4irError, match=r"a\.png: 20x10 pixels \(0.0002 MP\) is above the 0.000199 MP decode limit "
                                          r"\(data.max_pixels\)"):
        read_image(image)
    path.write_text(yaml.safe_dump(with_value("data.max_pixels", 200)))
    load_task_params(argparse.Namespace(params=str(path), task="derain"))
    assert read_image(image).shape == (10, 20, 3)


def test_prepared_folder_data_too_small_for_the_params_fails_at_prepare(tmp_path):
    import numpy as np

    from sam4ir.io import write_image
    from sam4ir.stages.prepare_data import check_prepared_sizes

    for split, side in (("train", 64), ("test", 12)):
        for kind in ("input", "target"):
            write_image(tmp_path / split / kind / "a.png", np.zeros((side, side + 5, 3), np.uint8))
    params = parse_params(with_value("data.source", "folder"), "params.yaml")
    with pytest.raises(Sam4irError, match=r"^params.yaml: eval.crop_border = 1 leaves test images \(smallest side "
                                          r"64 px in .*/train, 12 px in test\) smaller"):
        check_prepared_sizes(parse_params({**with_value("data.source", "folder"),
                                           "eval": {**PARAMS["eval"], "crop_border": 1}}, "params.yaml"), tmp_path)
    check_prepared_sizes(params, tmp_path)  # crop 48 fits 64, border 0 leaves 12 >= 11
    with pytest.raises(Sam4irError, match=r"train.crop = 48 is larger than the training images \(smallest side 40"):
        write_image(tmp_path / "train" / "input" / "b.png", np.zeros((40, 40, 3), np.uint8))
        write_image(tmp_path / "train" / "target" / "b.png", np.zeros((40, 40, 3), np.uint8))
        check_prepared_sizes(params, tmp_path)

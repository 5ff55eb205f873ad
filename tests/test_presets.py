"""Paper presets: each merges cleanly into params.yaml, reads back through the stages' own param readers, and
builds the released network.

Expected parameter counts were computed by constructing the ORIGINAL classes (megvii-research/NAFNet,
megvii-model/HINet, swz30/Restormer) with the released option files' network_g; none comes from our code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import yaml

from sam4ir import models, presets
from sam4ir.params import config
from sam4ir.errors import Sam4irError
from sam4ir.params.schema import parse_params
from sam4ir.stages import run_stage
from sam4ir.training.fit import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "configs" / "paper"
PARAMS = ROOT / "params.yaml"

NAFNET_GOPRO_32, NAFNET_GOPRO_64, NAFNET_SIDD_32 = 17_111_907, 67_888_835, 29_159_715
HINET_HIN_3_4, HINET_HIN_0_4 = 88_668_806, 88_669_702  # GoPro; Rain13k and SIDD (HIN in every encoder level)
RESTORMER_WITH_BIAS, RESTORMER_BIAS_FREE = 26_126_644, 26_111_668  # deraining/deblurring; real denoising
EXPECTED = {  # name -> (task, model, parameters)
    "derain-nafnet": ("derain", "nafnet", NAFNET_GOPRO_32),
    "derain-hinet": ("derain", "hinet", HINET_HIN_0_4),
    "derain-restormer": ("derain", "restormer", RESTORMER_WITH_BIAS),
    "deblur-nafnet": ("deblur", "nafnet", NAFNET_GOPRO_32),
    "deblur-nafnet64": ("deblur", "nafnet", NAFNET_GOPRO_64),
    "deblur-hinet": ("deblur", "hinet", HINET_HIN_3_4),
    "deblur-restormer": ("deblur", "restormer", RESTORMER_WITH_BIAS),
    "denoise-nafnet": ("denoise", "nafnet", NAFNET_SIDD_32),
    "denoise-hinet": ("denoise", "hinet", HINET_HIN_0_4),
    "denoise-restormer": ("denoise", "restormer", RESTORMER_BIAS_FREE),
}


@pytest.fixture(scope="module")
def base() -> dict:
    return config.read_mapping(PARAMS)


def test_every_expected_preset_exists_with_a_description():
    assert presets.preset_names(FOLDER) == sorted(EXPECTED)
    for name in EXPECTED:
        assert len(presets.describe(name, FOLDER)) > 20, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_preset_merges_into_params_and_builds_the_released_network(name, base):
    task, model_name, n_params = EXPECTED[name]
    preset = presets.load_preset(name, FOLDER)
    presets.check_keys(base, preset, where=name)
    merged = presets.merge(base, preset)

    # read exactly as the stages read them: catches e.g. `2e-4`, which YAML parses as a string
    params = parse_params(merged, name)
    assert params.tasks == [task]
    assert params.sam.backend == "sam" and params.data.source == "download"
    TrainConfig.from_params(params.train)
    TrainConfig.from_params(params.train, iters=params.distill.iters, lr=params.distill.lr)
    assert params.distill.iters < params.train.iters

    spec_name, kwargs = params.model.name, params.model.kwargs
    assert spec_name == model_name
    # replaced, not merged with the demo's arguments of the same network
    assert set(kwargs) == set(preset["model"]["args"][model_name])
    with torch.device("meta"):
        net = models.build(spec_name, **kwargs)
    assert models.count_params(net) == n_params


def test_merge_is_deep_keeps_order_and_leaves_inputs_alone():
    base = {"a": 1, "model": {"name": "nafnet", "args": {"nafnet": {"width": 8}, "hinet": {"wf": 8, "depth": 3}}},
            "train": {"lr": 0.1, "betas": [0.9, 0.9], "iters": 5}, "z": {"k": 0}}
    override = {"train": {"betas": [0.9, 0.99], "lr": 0.2}, "model": {"name": "hinet", "args": {"hinet": {"wf": 64}}},
                "new": {"x": [1]}}
    snapshot = yaml.safe_dump([base, override])

    merged = presets.merge(base, override)

    assert merged == {"a": 1, "model": {"name": "hinet", "args": {"nafnet": {"width": 8}, "hinet": {"wf": 64}}},
                      "train": {"lr": 0.2, "betas": [0.9, 0.99], "iters": 5}, "z": {"k": 0}, "new": {"x": [1]}}
    assert list(merged) == ["a", "model", "train", "z", "new"]
    assert list(merged["train"]) == ["lr", "betas", "iters"]
    assert yaml.safe_dump([base, override]) == snapshot
    merged["new"]["x"].append(2)
    assert override["new"]["x"] == [1]


@pytest.mark.parametrize("override, key", [
    ({"train": {"ema_decay": 0.999}}, "train.ema_decay"),
    ({"sam": {"generator": {"points": 16}}}, "sam.generator.points"),
    ({"train": 5}, "train"),
    ({"train": {"lr": {"value": 1}}}, "train.lr"),
])
def test_check_keys_names_the_offending_key(override, key, base):
    with pytest.raises(Sam4irError, match=rf"'{key}'") as err:
        presets.check_keys(base, override, where="p.yaml")
    assert "\n" not in str(err.value)


def test_check_keys_accepts_new_download_section_and_any_model_args(base):
    presets.check_keys(base, {"data": {"source": "download", "download": {"derain": {"url": "x"}}},
                              "model": {"name": "hinet", "args": {"hinet": {"wf": 64}}}})


def test_apply_writes_the_merged_params(tmp_path, base):
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())

    dry = presets.apply("deblur-hinet", params, FOLDER, dry_run=True)
    assert params.read_text() == PARAMS.read_text()  # a dry run writes nothing
    assert "-  name: nafnet" in dry and "+  name: hinet" in dry

    assert presets.apply("deblur-hinet", params, FOLDER) == dry
    expected = presets.merge(base, presets.load_preset("deblur-hinet", FOLDER))
    written = yaml.safe_load(params.read_text())  # PyYAML, as DVC reads it: floats such as 1e-7 stay floats
    assert written == expected
    assert list(written) == list(base)
    config.load_params(params)  # the schema accepts the result
    kept = [line for line in PARAMS.read_text().splitlines() if line.lstrip().startswith("#")]
    assert kept and all(line in params.read_text() for line in kept)  # every comment survives
    assert [p.name for p in tmp_path.iterdir()] == ["params.yaml"]  # no temp file left behind


def test_apply_refuses_a_preset_with_an_unknown_key_and_keeps_params(tmp_path):
    folder = tmp_path / "presets"
    folder.mkdir()
    (folder / "bad.yaml").write_text("# bad\ntrain:\n  ema_decay: 0.999\n")
    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())

    with pytest.raises(Sam4irError, match=r"bad\.yaml: key 'train\.ema_decay' is not a param"):
        presets.apply("bad", params, folder)
    assert params.read_text() == PARAMS.read_text()


def test_unknown_preset_is_one_line_listing_the_names():
    with pytest.raises(Sam4irError) as err:
        presets.load_preset("deblur-nafnet128", FOLDER)
    message = str(err.value)
    assert "\n" not in message and "'deblur-nafnet128'" in message
    assert all(name in message for name in EXPECTED)


def _cli(monkeypatch, *args: str) -> int:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "argv", ["sam4ir.presets", *args])
    try:
        run_stage(presets.main)
    except SystemExit as stop:
        return stop.code
    return 0


def test_cli_list_and_apply(monkeypatch, capsys, tmp_path):
    assert _cli(monkeypatch, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == sorted(EXPECTED)

    params = tmp_path / "params.yaml"
    params.write_text(PARAMS.read_text())
    assert _cli(monkeypatch, "apply", "denoise-nafnet", "--params", str(params)) == 0
    assert config.load_params(params).model.kwargs["middle_blk_num"] == 12

    assert _cli(monkeypatch, "apply", "nope", "--params", str(params)) == 1
    assert capsys.readouterr().err.count("\n") == 1

"""Networks of the user's own by import path: the plain-module wrapper (features from a named layer, SPF's prior
channels, IR2's identity start), the RestorationNet protocol, one-line errors, checkpoints and restore, and the
distillation's scale warning."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from sam4ir import models
from sam4ir.errors import Sam4irError
from sam4ir.inference import restore_image
from sam4ir.io import read_image, write_image
from sam4ir.method.objectives import DistillObjective, scale_warning
from sam4ir.method.spf import build_ir2, spf_input
from sam4ir.restore import main as restore_main
from sam4ir.params.schema import parse_params, start_trace, stop_trace
from test_schema import PARAMS

REPO = Path(__file__).resolve().parents[1]
DNCNN = "tests.own_nets:TinyDnCNN"
ARGS = {"width": 4, "depth": 4}  # body: conv, relu, conv, relu, conv, relu, conv (body.0 ... body.6)


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch):
    """``tests.own_nets`` imports from the repository root, as from a stage run there (``python -m``)."""
    monkeypatch.syspath_prepend(str(REPO))


def dncnn(seed: int = 0, **build_kwargs) -> models.RestorationNet:
    torch.manual_seed(seed)
    return models.build(DNCNN, **{**ARGS, **build_kwargs}).eval()


class WrongShape(nn.Module):
    """Maps an image to 4 channels: not an image-to-image network."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, 4, 1)
        self.act = nn.ReLU()
        self.tail = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.act(self.head(x)))


def test_a_plain_module_is_wrapped_and_is_ir1_exactly():
    ir1 = dncnn()
    assert isinstance(ir1, models.PlainNet) and ir1.feature_layer == "body.5"  # the activation before the output
    x = torch.rand(2, 3, 12, 10)
    out = ir1.forward_train(x)
    with torch.no_grad():
        assert torch.equal(out.images[-1], ir1.net(x)) and torch.equal(ir1(x), ir1.net(x))
        assert torch.equal(out.features, ir1.net.body[:6](x))
    assert models.count_params(ir1) == models.count_params(ir1.net)  # IR1 adds nothing


def test_the_dotted_import_path_names_the_same_class():
    assert type(models.build("tests.own_nets.TinyDnCNN").net) is type(dncnn().net)


def test_features_come_from_the_named_layer():
    ir1 = dncnn(feature_layer="body.1")
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(ir1.forward_train(x).features, torch.relu(ir1.net.body[0](x)))


def test_a_restoration_net_subclass_is_used_as_is():
    net = models.build("tests.own_nets:TinyResidual", width=4)
    assert type(net).__name__ == "TinyResidual" and not isinstance(net, models.PlainNet)
    ir2 = build_ir2(net, "tests.own_nets:TinyResidual", {"width": 4}, "mean")
    y, lab = torch.rand(1, 3, 8, 8), torch.randint(0, 3, (1, 8, 8))
    with torch.no_grad():
        assert torch.equal(ir2(spf_input(y, lab, "mean")), y)


@pytest.mark.parametrize("name, kwargs, message", [
    ("nosuchpkg.nets:Net", {}, "model.name: cannot import 'nosuchpkg.nets:Net': No module named 'nosuchpkg'"),
    ("tests.own_nets:Nope", {}, "model.name: cannot import 'tests.own_nets:Nope': module 'tests.own_nets' has no "
                                "'Nope'"),
    ("math:pi", {}, "model.name: 'math:pi' is a float, not a network class or a function building one"),
    ("pathlib:Path", {}, "model.name: 'pathlib:Path' is a class but not a torch nn.Module"),
    (DNCNN, {"dept": 3}, f"model.args.{DNCNN}: {DNCNN} has no argument 'dept'; it takes width, depth"),
    (DNCNN, {"depth": "3"}, f"model.args.{DNCNN}: cannot build {DNCNN} from {{'depth': '3'}}: TypeError: "),
    (DNCNN, {"feature_layer": "body.9"}, f"model.feature_layer: {DNCNN} has no module 'body.9'; its modules include "
                                         "body.0, body.1, body.2, body.3, body.4 (any name"),
    ("torch.nn:Identity", {}, "model.feature_layer: torch.nn:Identity has no module before its output layer"),
    ("tests.own_nets:TinyResidual", {"feature_layer": "head"}, "model.feature_layer: tests.own_nets:TinyResidual is a "
                                                               "RestorationNet"),
    ("nafnet", {"feature_layer": "intro"}, "model.feature_layer: nafnet gives its decoder's features itself"),
])
def test_bad_networks_are_one_line_naming_the_param(name, kwargs, message):
    with pytest.raises(Sam4irError) as err:
        models.build(name, **kwargs)
    assert str(err.value).startswith(message) and "\n" not in str(err.value), str(err.value)


def test_a_network_that_does_not_return_an_image_is_a_one_line_error():
    net = models.build("test_own_nets:WrongShape")
    with pytest.raises(Sam4irError, match=r"^model.name: test_own_nets:WrongShape returned \[1, 4, 8, 8\] for a "
                                          r"\[1, 3, 8, 8\] image; a plain network maps B x 3 x H x W"):
        net(torch.rand(1, 3, 8, 8))


@pytest.mark.parametrize("layer", ["body.5", "body.1"])
def test_ir2_starts_as_the_identity_on_y1_and_learns_from_there(layer):
    ir1 = dncnn(feature_layer=layer)
    for p in ir1.parameters():
        p.data.normal_(0, 0.3)
    ir2 = build_ir2(ir1, DNCNN, ARGS, "mean_std")
    assert ir2.feature_layer == layer  # the features SPD compares with IR1's
    y, lab = torch.rand(2, 3, 8, 8), torch.randint(0, 4, (2, 8, 8))
    out = ir2.forward_train(spf_input(y, lab, "mean_std"))
    assert torch.equal(out.images[-1], y)
    out.images[-1].sub(torch.rand_like(y)).square().mean().backward()
    assert ir2.gate.grad.abs() > 0  # the gate opens at the first step
    copied = build_ir2(ir1, DNCNN, ARGS, "mean_std", init="copy")
    with torch.no_grad():
        assert torch.allclose(copied(spf_input(y, lab, "mean_std")), ir1(y), atol=1e-6)


def test_checkpoints_record_the_import_path_arguments_and_feature_layer(tmp_path):
    ir1 = dncnn(feature_layer="body.3")
    models.save_model(tmp_path / "model.pt", ir1, DNCNN, ARGS)
    loaded = models.load_model(tmp_path / "model.pt")
    assert isinstance(loaded, models.PlainNet) and loaded.feature_layer == "body.3"
    ir2 = build_ir2(ir1, DNCNN, ARGS, "both")
    models.save_model(tmp_path / "ir2.pt", ir2, DNCNN, {**ARGS, "extra_in_channels": 4})
    loaded2 = models.load_model(tmp_path / "ir2.pt")
    x = torch.rand(1, 7, 8, 8)
    with torch.no_grad():
        assert torch.equal(loaded.forward_train(x[:, :3]).features, ir1.forward_train(x[:, :3]).features)
        assert torch.equal(loaded2(x), ir2(x))


def test_a_checkpoint_whose_network_cannot_be_imported_names_the_file(tmp_path):
    models.save_model(tmp_path / "model.pt", dncnn(), "gone.nets:TinyDnCNN", ARGS)
    with pytest.raises(Sam4irError, match=r"model.pt: model.name: cannot import 'gone.nets:TinyDnCNN'"):
        models.load_model(tmp_path / "model.pt")


def test_restore_cli_restores_with_a_saved_own_network(tmp_path):
    net = dncnn(seed=1)
    models.save_model(tmp_path / "model.pt", net, DNCNN, ARGS)
    image = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    write_image(tmp_path / "in.png", image)
    proc = subprocess.run([sys.executable, "-m", "sam4ir.restore", "--checkpoint", str(tmp_path / "model.pt"),
                           "--input", str(tmp_path / "in.png"), "--output", str(tmp_path / "out"), "--device", "cpu"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert np.array_equal(read_image(tmp_path / "out" / "in.png"), restore_image(net, image, torch.device("cpu")))


def test_restore_builds_an_own_network_for_bare_weights(tmp_path):
    net = dncnn(seed=2)
    torch.save(net.state_dict(), tmp_path / "weights.pth")
    write_image(tmp_path / "in.png", np.zeros((16, 16, 3), dtype=np.uint8))
    restore_main(["--checkpoint", str(tmp_path / "weights.pth"), "--input", str(tmp_path / "in.png"), "--output",
                  str(tmp_path / "out"), "--device", "cpu", "--model", DNCNN, "--model-args", '{"width": 4, "depth": 4}'])
    assert (tmp_path / "out" / "in.png").is_file()


def params_with(name: str, args: dict, feature_layer: str | None = None) -> dict:
    tree = copy.deepcopy(PARAMS)
    tree["model"].update(name=name, feature_layer=feature_layer)
    tree["model"]["args"].update(args)
    return tree


def test_params_take_an_import_path_with_its_arguments_nested_by_its_dots():
    params = parse_params(params_with(DNCNN, {"tests": {"own_nets:TinyDnCNN": {"depth": 5}}}, "body.1"), "p.yaml")
    reads = start_trace()
    try:
        assert params.model.kwargs == {"depth": 5} and params.model.feature_layer == "body.1"
        assert {f"model.args.{DNCNN}", "model.name", "model.feature_layer"} <= reads  # as dvc.yaml declares them
    finally:
        stop_trace()


@pytest.mark.parametrize("args, feature_layer, message", [
    ({"tests.own_nets:TinyDnCNN": {}}, None, f"param 'model.args.{DNCNN}': not a package name: DVC reads a params "
                                             "key's dots as nesting (write it nested: tests: {own_nets:TinyDnCNN: "),
    ({}, None, f"param 'model.args.{DNCNN}': no mapping of constructor arguments at this key (nested by "),
    ({"tests": {"own_nets:TinyDnCNN": {"depht": 5}}}, None, f"param 'model.args.{DNCNN}': {DNCNN} has no argument"),
    ({"tests": {"own_nets:TinyDnCNN": {}}}, "body.7", "param 'model.feature_layer': tests.own_nets:TinyDnCNN has no "
                                                      "module 'body.7'"),
    ({"tests": {"own_nets:TinyDnCNN": {}}, "nafent": {}}, None, "param 'model.args.nafent': neither a network of "
                                                               "sam4ir"),
])
def test_bad_own_network_params_fail_in_one_line_naming_the_key(args, feature_layer, message):
    with pytest.raises(Sam4irError) as err:
        parse_params(params_with(DNCNN, args, feature_layer), "p.yaml")
    assert str(err.value).startswith(f"p.yaml: {message}") and "\n" not in str(err.value), str(err.value)


def test_an_unimportable_network_fails_the_params_naming_model_name():
    with pytest.raises(Sam4irError, match=r"^p.yaml: param 'model.name': cannot import 'x.y:Z': No module named 'x'$"):
        parse_params(params_with("x.y:Z", {}), "p.yaml")


def test_scale_warning_compares_the_terms_pull_with_the_reconstruction_loss():
    student = nn.Linear(2, 1, bias=False)
    out = student(torch.tensor([[1.0, 2.0]]))
    recon = out.sum()
    assert scale_warning(student, recon, {"spd": 0.5 * out.sum(), "sgr": 20 * out.sum()}) is None
    line = scale_warning(student, recon, {"spd": 1e-3 * out.sum(), "sgr": 300 * out.sum()})
    assert line.startswith("sam4ir: warning: first distillation step: distill.spd_weight x L_SPD = ")
    assert "pulls IR1's weights 1000x weaker; distill.sgr_weight x L_SGR = " in line and "300x harder" in line
    assert line.endswith("change distill.spd_weight / distill.sgr_weight") and "\n" not in line


@pytest.mark.parametrize("spd_weight, warns", [(1e-7, True), (1.0, False), (1e7, True)])
def test_distillation_warns_once_at_its_first_step(spd_weight, warns, capsys):
    ir1 = dncnn()
    cfg = parse_params(PARAMS, "params.yaml").distill.model_copy(update=dict(
        spd_weight=spd_weight, sgr_weight=0.0, analyzer="ir_features", spd_loss="l1", teacher="frozen"))
    spf = parse_params(PARAMS, "params.yaml").spf.model_copy(update=dict(prior="mean"))
    objective = DistillObjective(ir1, build_ir2(ir1, DNCNN, ARGS, "mean"), cfg, spf, recon="l1", method="spd",
                                 analyzer_pretrained=False).train()
    g = torch.Generator().manual_seed(0)
    batch = {"input": torch.rand(2, 3, 8, 8, generator=g), "target": torch.rand(2, 3, 8, 8, generator=g),
             "mask": torch.randint(0, 3, (2, 8, 8), generator=g)}
    for _ in range(2):
        objective(batch)["loss"].backward()
    lines = capsys.readouterr().err.splitlines()
    assert lines == ([line for line in lines if "distill.spd_weight x L_SPD" in line] if warns else [])
    assert len(lines) == int(warns)


def test_dvc_reads_the_arguments_at_model_args_model_name_and_sets_them_by_the_dotted_form(tmp_path):
    """DVC splits params keys on dots (``dvc exp run -S model.args.<path>.<arg>=...``, ``dvc params diff``), so the
    arguments nest by the path's dots (a flat ``'tests.own_nets:TinyDnCNN':`` key is not found); ``dvc exp run -S`` cannot name a key
    holding a colon, but sets the dotted form's arguments."""
    from dvc.dependency.param import read_param_file
    from dvc.fs import LocalFileSystem
    from dvc.utils.hydra import apply_overrides

    nested, flat = tmp_path / "nested.yaml", tmp_path / "flat.yaml"
    nested.write_text("model:\n  args:\n    tests:\n      own_nets:TinyDnCNN: {depth: 5}\n"
                      "      own_nets: {TinyDnCNN: {depth: 5}}\n")
    flat.write_text("model:\n  args:\n    'tests.own_nets:TinyDnCNN': {depth: 5}\n")
    for name in (DNCNN, "tests.own_nets.TinyDnCNN"):
        key = f"model.args.{name}"
        assert read_param_file(LocalFileSystem(), str(nested), [key], flatten=True) == {key: {"depth": 5}}
    assert read_param_file(LocalFileSystem(), str(flat), [f"model.args.{DNCNN}"], flatten=True) == {}
    apply_overrides(str(nested), ["model.args.tests.own_nets.TinyDnCNN.depth=6"])
    assert "own_nets:TinyDnCNN: {depth: 5}" in nested.read_text() and "TinyDnCNN: {depth: 6}" in nested.read_text()

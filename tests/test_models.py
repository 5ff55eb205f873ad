"""IR networks: fidelity to the released architectures, the training interface, SPF input channels, TLC, weights I/O.

Reference numbers (parameter counts, key names and shapes) were computed by constructing the original classes
(megvii-research/NAFNet, megvii-model/HINet, swz30/Restormer); they do not come from our code.
"""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F

from sam4ir.errors import Sam4irError
from sam4ir.models import MODELS, build, count_params, load_weights
from sam4ir.models.nafnet import LocalAvgPool2d

GOPRO_32 = dict(width=32, middle_blk_num=1, enc_blk_nums=[1, 1, 1, 28], dec_blk_nums=[1, 1, 1, 1])
SIDD_32 = dict(width=32, middle_blk_num=12, enc_blk_nums=[2, 2, 4, 8], dec_blk_nums=[2, 2, 2, 2])
HINET_GOPRO = dict(wf=64, hin_position_left=3, hin_position_right=4)

TINY = {
    "nafnet": dict(width=8, middle_blk_num=1, enc_blk_nums=[1, 1], dec_blk_nums=[1, 1]),
    "hinet": dict(wf=4, depth=3),
    "restormer": dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8]),
}
TINY_FEATURE_CHANNELS = {"nafnet": 8, "hinet": 4, "restormer": 16}
TINY_STAGES = {"nafnet": 1, "hinet": 2, "restormer": 1}


def _tiny(name: str, seed: int = 0, **extra) -> torch.nn.Module:
    """A tiny model in eval mode with every parameter random (NAFNet's beta/gamma start at zero otherwise)."""
    torch.manual_seed(seed)
    model = build(name, **TINY[name], **extra).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.2)
    return model


def _meta(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return build(name, **kwargs)


@pytest.mark.parametrize("name, kwargs, expected", [
    ("nafnet", GOPRO_32, 17_111_907),
    ("nafnet", SIDD_32, 29_159_715),
    ("nafnet", dict(GOPRO_32, width=64), 67_888_835),
    ("hinet", HINET_GOPRO, 88_668_806),
    ("hinet", dict(wf=64, hin_position_left=0, hin_position_right=4), 88_669_702),
    ("restormer", {}, 26_126_644),
])
def test_released_configurations_have_the_original_parameter_count(name, kwargs, expected):
    assert count_params(_meta(name, **kwargs)) == expected


@pytest.mark.parametrize("name, kwargs, n_keys, shapes, absent", [
    ("nafnet", GOPRO_32, 664,
     {"intro.weight": [32, 3, 3, 3], "ending.weight": [3, 32, 3, 3], "encoders.3.27.beta": [1, 256, 1, 1],
      "downs.0.weight": [64, 32, 2, 2], "ups.0.0.weight": [1024, 512, 1, 1],
      "middle_blks.0.sca.1.weight": [512, 512, 1, 1], "decoders.3.0.norm2.bias": [32]},
     ["ups.0.0.bias"]),
    ("hinet", HINET_GOPRO, 186,
     {"conv_01.weight": [64, 3, 3, 3], "down_path_2.0.csff_enc.weight": [64, 64, 3, 3],
      "down_path_1.3.norm.weight": [256], "sam12.conv2.weight": [3, 64, 3, 3], "cat12.weight": [64, 128, 1, 1],
      "up_path_1.0.up.weight": [1024, 512, 2, 2], "last.weight": [3, 64, 3, 3],
      "down_path_1.0.downsample.weight": [64, 64, 4, 4]},
     ["down_path_1.0.norm.weight", "down_path_2.4.csff_enc.weight", "down_path_1.4.downsample.weight"]),
    ("restormer", {}, 494,
     {"patch_embed.proj.weight": [48, 3, 3, 3], "latent.0.attn.temperature": [8, 1, 1],
      "encoder_level1.0.ffn.project_in.weight": [254, 48, 1, 1], "output.weight": [3, 96, 3, 3],
      "reduce_chan_level3.weight": [192, 384, 1, 1], "down1_2.body.0.weight": [24, 48, 3, 3],
      "encoder_level1.0.norm1.body.bias": [48], "refinement.3.attn.qkv_dwconv.weight": [288, 1, 3, 3]},
     ["skip_conv.weight", "output.bias"]),
])
def test_state_dict_names_and_shapes_match_the_original(name, kwargs, n_keys, shapes, absent):
    sd = _meta(name, **kwargs).state_dict()
    assert len(sd) == n_keys
    assert {key: list(sd[key].shape) for key in shapes} == shapes
    assert not set(absent) & set(sd)


@pytest.mark.parametrize("name", sorted(TINY))
def test_odd_sizes_keep_shape_and_forward_equals_forward_train(name):
    model = _tiny(name)
    x = torch.rand(2, 3, 37, 45)
    with torch.no_grad():
        y = model(x)
        out = model.forward_train(x)
    assert y.shape == x.shape
    assert len(out.images) == TINY_STAGES[name]
    assert all(img.shape == x.shape for img in out.images)
    assert out.features.shape == (2, TINY_FEATURE_CHANNELS[name], 37, 45)
    assert torch.equal(y, out.images[-1])


@pytest.mark.parametrize("name", sorted(TINY))
def test_extra_input_channels_are_inert_when_their_weights_are_zero(name):
    plain = _tiny(name)
    wide = build(name, **TINY[name], extra_in_channels=4).eval()
    sd = plain.state_dict()
    wide_sd = wide.state_dict()
    widened = [key for key in sd if sd[key].shape != wide_sd[key].shape]
    assert widened and all(wide_sd[key].shape[1] == 3 + 4 for key in widened)
    for key in widened:
        sd[key] = torch.cat([sd[key], torch.zeros_like(wide_sd[key][:, 3:])], dim=1)
    wide.load_state_dict(sd, strict=True)

    torch.manual_seed(1)
    x = torch.rand(1, 3, 21, 19)
    prior = torch.rand(1, 4, 21, 19)
    with torch.no_grad():
        expected = plain(x)
        got = wide(torch.cat([x, prior], dim=1))
        assert got.shape == expected.shape
        assert torch.allclose(got, expected, atol=1e-5)
        for key in widened:
            wide.state_dict()[key][:, 3:].normal_(0, 0.2)
        assert not torch.allclose(wide(torch.cat([x, prior], dim=1)), expected, atol=1e-3)


def test_hinet_first_stage_has_its_own_residual_image():
    """Stage 1 image = SAM's prediction + input: with zero weights in that head it is the input itself."""
    model = _tiny("hinet")
    with torch.no_grad():
        model.sam12.conv2.weight.zero_()
        model.sam12.conv2.bias.zero_()
        x = torch.rand(1, 3, 16, 16)
        assert torch.equal(model.forward_train(x).images[0], x)


def _bigger_than_base_pools(size: int, fast_imp: bool) -> torch.Tensor:
    plain = _tiny("nafnet")
    local = build("nafnet", **TINY["nafnet"], tlc=True, train_size=(1, 3, 16, 16), fast_imp=fast_imp).eval()
    local.load_state_dict(plain.state_dict(), strict=True)
    torch.manual_seed(2)
    x = torch.rand(1, 3, size, size + 4)
    with torch.no_grad():
        return plain(x), local(x)


@pytest.mark.parametrize("fast_imp", [False, True])
def test_tlc_equals_plain_up_to_1_5x_train_size_and_differs_beyond(fast_imp):
    # train 16x16 -> pools see at most 1.5x the training extent, i.e. inputs up to 24 px pool globally
    same_plain, same_local = _bigger_than_base_pools(20, fast_imp)
    assert torch.equal(same_plain, same_local)
    big_plain, big_local = _bigger_than_base_pools(44, fast_imp)
    assert big_local.shape == big_plain.shape
    assert not torch.allclose(big_plain, big_local, atol=1e-4)


def test_tlc_keeps_the_state_dict():
    plain = _meta("nafnet", **GOPRO_32).state_dict()
    local = _meta("nafnet", **GOPRO_32, tlc=True, train_size=(1, 3, 256, 256)).state_dict()
    assert {k: v.shape for k, v in plain.items()} == {k: v.shape for k, v in local.items()}


def test_local_pool_is_a_stride_1_box_mean_with_replicated_edges():
    torch.manual_seed(3)
    x = torch.rand(2, 3, 9, 11)
    got = LocalAvgPool2d(kernel_size=(4, 5), max_r=(1, 1))(x)
    box = F.avg_pool2d(x, (4, 5), stride=1)  # 6 x 7 valid positions, padded back (1, 2) rows and (2, 2) cols
    assert torch.allclose(got, F.pad(box, (2, 2, 1, 2), mode="replicate"), atol=1e-6)
    assert torch.equal(LocalAvgPool2d(kernel_size=(9, 11), max_r=(1, 1))(x), x.mean((2, 3), keepdim=True))


def test_tlc_kernels_follow_the_original_conversion_pass():
    """NAFNetLocal sizes each pool as (feature size on a padded train_size input) * 1.5."""
    model = _meta("nafnet", **TINY["nafnet"], tlc=True, train_size=(1, 3, 30, 64))  # 30 pads to 32
    kernels = [block.sca[0].kernel_size for block in (model.encoders[0][0], model.middle_blks[0],
                                                     model.decoders[0][0], model.decoders[1][0])]
    assert kernels == [(32 * 45 // 30, 96), (8 * 45 // 30, 24), (16 * 45 // 30, 48), (32 * 45 // 30, 96)]


@pytest.mark.parametrize("wrap", [
    lambda sd: {"params": {f"module.{k}": v for k, v in sd.items()}},
    lambda sd: {"params_ema": sd, "params": {k: torch.zeros_like(v) for k, v in sd.items()}},
    lambda sd: {"state_dict": sd},
    lambda sd: sd,
])
def test_load_weights_round_trip(tmp_path, wrap):
    source, target = _tiny("nafnet", seed=0), _tiny("nafnet", seed=1)
    path = tmp_path / "net.pth"
    torch.save(wrap(source.state_dict()), path)
    load_weights(target, path)
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_load_weights_reads_our_stage_checkpoints(tmp_path):
    source, target = _tiny("hinet", seed=0), _tiny("hinet", seed=1)
    torch.save({"params": source.state_dict(), "model": "hinet", "model_args": TINY["hinet"]}, tmp_path / "m.pt")
    load_weights(target, tmp_path / "m.pt")
    assert torch.equal(target.last.weight, source.last.weight)


def test_load_weights_errors_are_one_line_and_name_file_and_keys(tmp_path):
    model = _tiny("nafnet")
    other = build("nafnet", **dict(TINY["nafnet"], width=16))
    path = tmp_path / "wide.pth"
    torch.save({"params": other.state_dict()}, path)
    with pytest.raises(Sam4irError) as err:
        load_weights(model, path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "intro.weight [16, 3, 3, 3] vs model [8, 3, 3, 3]" in message

    partial = {k: v for k, v in model.state_dict().items() if k != "ending.bias"}
    partial["extra.weight"] = torch.zeros(1)
    torch.save(partial, path)
    with pytest.raises(Sam4irError, match=r"missing keys ending\.bias; unexpected keys extra\.weight"):
        load_weights(model, path)
    load_weights(model, path, strict=False)  # tolerated when not strict

    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(Sam4irError, match="junk.pth: not a readable torch checkpoint"):
        load_weights(model, tmp_path / "junk.pth")
    with pytest.raises(Sam4irError, match="absent.pth: checkpoint file not found"):
        load_weights(model, tmp_path / "absent.pth")
    torch.save({"params": {"a": 1}}, path)
    with pytest.raises(Sam4irError, match="no state dict found"):
        load_weights(model, path)


def test_build_rejects_unknown_names_and_arguments():
    assert set(MODELS) == {"nafnet", "hinet", "restormer"}
    with pytest.raises(Sam4irError, match="unknown model 'unet'; known: nafnet, hinet, restormer"):
        build("unet")
    with pytest.raises(Sam4irError, match=r"model\.args\.tlc: hinet has no such argument"):
        build("hinet", wf=4, tlc=True)
    with pytest.raises(Sam4irError, match="enc_blk_nums"):
        build("nafnet", enc_blk_nums=[1, 1], dec_blk_nums=[1])
    with pytest.raises(Sam4irError, match="heads"):
        build("restormer", heads=[1, 2])
    with pytest.raises(Sam4irError, match="model.args: cannot build nafnet"):
        build("nafnet", width="wide")

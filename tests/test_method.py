"""The paper's pieces: SPF prior encoding and IR2 initialisation, L_SPD, L_SGR, the analyzer and the total loss."""

from __future__ import annotations

import math
import urllib.error
from pathlib import Path

import pytest
import torch

from sam4ir import models
from sam4ir.errors import Sam4irError
from sam4ir.training.losses import recon_loss
from sam4ir.method.analyzer import VGGFeatures, build_analyzer, vgg19_relu3_4
from sam4ir.method.objectives import DistillObjective, DistillWeights, SpfObjective
from sam4ir.method.sgr import region_prototypes, relation_matrix, select_regions, sgr_loss
from sam4ir.method.spd import spd_loss
from sam4ir.method.spf import boundary, build_ir2, encode_prior, prior_channels, region_mean, spf_input
from sam4ir.params.schema import parse_params
from test_schema import PARAMS

NAFNET = ("nafnet", dict(width=8, enc_blk_nums=[1, 1], middle_blk_num=1, dec_blk_nums=[1, 1]))
HINET = ("hinet", dict(wf=4, depth=2, hin_position_left=0, hin_position_right=2))
PRIORS = ("mean", "boundary", "both")
RESTORMER = ("restormer", dict(dim=8, num_blocks=[1, 1, 1, 1], num_refinement_blocks=1, heads=[1, 2, 4, 8]))


def label_map() -> torch.Tensor:
    """1 x 4 x 6: left half id 1, right half id 2 except one unlabelled column (0)."""
    lab = torch.ones(1, 4, 6, dtype=torch.long)
    lab[:, :, 3:5] = 2
    lab[:, :, 5] = 0
    return lab


IR2_CASES = [(spec, prior) for spec in (NAFNET, HINET) for prior in PRIORS] + [(RESTORMER, "both")]


def random_ir1(spec) -> torch.nn.Module:
    """A network with non-trivial weights everywhere (NAFNet's beta/gamma start at zero)."""
    torch.manual_seed(0)
    ir1 = models.build(spec[0], **spec[1]).eval()
    for p in ir1.parameters():
        p.data.normal_(0, 0.1)
    return ir1


@pytest.mark.parametrize("spec, prior", IR2_CASES, ids=[f"{spec[0]}-{prior}" for spec, prior in IR2_CASES])
def test_ir2_starts_as_the_identity_on_y1(spec, prior):
    """The teacher starts exactly at its student's output: IR2(spf_input(ŷ1, L)) == ŷ1."""
    name, kwargs = spec
    ir1 = random_ir1(spec)
    ir2 = build_ir2(ir1, name, kwargs, prior).eval()
    x, lab = torch.rand(2, 3, 20, 24), torch.randint(0, 5, (2, 20, 24))
    with torch.no_grad():
        y1 = ir1(x)
        assert (y1 - x).abs().max() > 1e-2  # IR1 is not itself the identity
        assert torch.allclose(ir2(spf_input(y1, lab, prior)), y1, atol=1e-6)
    # every weight but the zeroed final projection comes from IR1 (so SPD compares like with like)
    kept = [k for k, v in ir2.state_dict().items() if v.shape == ir1.state_dict()[k].shape
            and not k.startswith(ir2.final_projection + ".")]
    assert all(torch.equal(ir2.state_dict()[k], ir1.state_dict()[k]) for k in kept)


@pytest.mark.parametrize("spec, prior", IR2_CASES, ids=[f"{spec[0]}-{prior}" for spec, prior in IR2_CASES])
def test_ir2_copy_init_equals_ir1(spec, prior):
    name, kwargs = spec
    ir1 = random_ir1(spec)
    ir2 = build_ir2(ir1, name, kwargs, prior, init="copy").eval()
    y = torch.rand(2, 3, 20, 24)
    lab = torch.randint(0, 5, (2, 20, 24))
    with torch.no_grad():
        assert torch.allclose(ir2(spf_input(y, lab, prior)), ir1(y), atol=1e-6)
    widened = [k for k, v in ir2.state_dict().items() if v.shape != ir1.state_dict()[k].shape]
    assert widened and all(ir2.state_dict()[k].shape[1] == ir1.state_dict()[k].shape[1] + prior_channels(prior)
                            for k in widened)


def test_ir2_identity_needs_a_global_residual():
    name, kwargs = RESTORMER
    dual = {**kwargs, "inp_channels": 6, "dual_pixel_task": True}
    ir1 = models.build(name, **dual)
    with pytest.raises(Sam4irError, match="spf.ir2_init: copy"):
        build_ir2(ir1, name, dual, "mean")
    with pytest.raises(Sam4irError, match="spf.ir2_init"):
        build_ir2(ir1, name, dual, "mean", init="zeros")


def test_build_ir2_refuses_an_ir1_of_another_shape():
    name, kwargs = NAFNET
    ir1 = models.build(name, **kwargs)
    with pytest.raises(Sam4irError, match="cannot initialise IR2 'intro.weight'"):
        build_ir2(ir1, name, {**kwargs, "width": 16}, "mean")  # every conv differs in dim 0
    with pytest.raises(Sam4irError, match="IR1 \\(nafnet\\) has no"):
        build_ir2(ir1, name, {**kwargs, "middle_blk_num": 2}, "mean")  # IR2 would keep a random block


def test_mean_prior_by_hand_and_differentiable():
    lab = label_map()
    img = torch.arange(24, dtype=torch.float).reshape(1, 1, 4, 6).repeat(1, 3, 1, 1).requires_grad_()
    out = region_mean(lab, img)
    cols = torch.arange(6.0)
    left = (cols[:3].mean() + 6 * 1.5)  # mean over rows 0..3 (offset 6 per row, mean row 1.5) of columns 0..2
    right = (cols[3:5].mean() + 6 * 1.5)
    assert torch.allclose(out[0, 0, :, :3], torch.full((4, 3), left))
    assert torch.allclose(out[0, 0, :, 3:5], torch.full((4, 2), right))
    assert torch.equal(out[0, :, :, 5], img[0, :, :, 5])  # unlabelled pixels keep their own colour
    out[0, 1, 0, 0].backward()  # one pixel of segment 1 (12 pixels), green channel
    expected = torch.zeros_like(img)
    expected[0, 1, :, :3] = 1 / 12
    assert torch.allclose(img.grad, expected)


def test_mean_prior_keeps_images_and_labels_apart():
    img = torch.rand(2, 3, 4, 6)
    lab = torch.stack([label_map()[0], label_map()[0]])
    out = region_mean(lab, img)
    for i in range(2):  # same ids in both images: each image gets its own means
        assert torch.allclose(out[i, :, 0, 0], img[i, :, :, :3].mean(dim=(1, 2)))
    with pytest.raises(Sam4irError, match="negative id -1"):
        region_mean(lab - 1, img)
    with pytest.raises(Sam4irError, match="does not match image"):
        encode_prior(lab[:, :2], img, "mean")


def test_boundary_by_hand_and_channel_counts():
    b = boundary(label_map())[0, 0]
    expected = torch.zeros(4, 6)
    expected[:, 2:6] = 1  # columns 2|3 and 4|5 are borders
    assert torch.equal(b, expected)
    img = torch.rand(1, 3, 4, 6)
    for kind, channels in (("mean", 3), ("boundary", 1), ("both", 4), ("mean_std", 6)):
        assert encode_prior(label_map(), img, kind).shape == (1, channels, 4, 6)
    with pytest.raises(Sam4irError, match="spf.prior"):
        encode_prior(label_map(), img, "edges")


def test_mean_std_prior_is_each_segments_spread_without_gradient():
    img = torch.rand(1, 3, 4, 6, requires_grad=True)
    lab = label_map()
    out = encode_prior(lab, img, "mean_std")
    left = img[0, :, :, :3].reshape(3, -1)
    assert torch.allclose(out[0, 3:, 0, 0], left.std(dim=1, unbiased=False), atol=1e-5)
    assert torch.equal(out[0, 3:, :, 5], torch.zeros(3, 4))  # unlabelled pixels: no spread
    assert torch.equal(out[:, :3], region_mean(lab, img))
    out[:, 3:].sum().backward(retain_graph=True)
    assert not img.grad.any()  # the spread carries information, not a gradient (sqrt is unbounded near 0)


def test_images_analyzer_compares_the_restored_images():
    ir1, ir2 = tiny_pair()
    x, lab = torch.rand(2, 3, 16, 16), torch.randint(1, 4, (2, 16, 16))
    out1 = ir1.forward_train(x)
    out2 = ir2.forward_train(spf_input(out1.images[-1], lab, "mean"))
    f_s, f_t = build_analyzer("images")(out1, out2)
    assert f_s is out1.images[-1] and f_t is out2.images[-1]
    assert spd_loss(f_s, f_t).item() == 0  # IR2 starts as the identity on ŷ1: nothing to distil yet


def feature_map(values: dict[int, list[float]], lab: torch.Tensor) -> torch.Tensor:
    """B x C x H x W features that are constant (given vector) on each segment of ``lab``."""
    c = len(next(iter(values.values())))
    f = torch.zeros(1, c, *lab.shape[-2:])
    for k, v in values.items():
        f[0][:, lab[0] == k] = torch.tensor(v, dtype=torch.float)[:, None]
    return f


def test_sgr_relation_matrix_by_hand():
    lab = torch.zeros(1, 4, 6, dtype=torch.long)
    lab[:, :2, :3], lab[:, :2, 3:], lab[:, 2:, :] = 1, 2, 3  # sizes 6, 6, 12
    f_t = feature_map({0: [0, 0], 1: [1, 0], 2: [0, 1], 3: [1, 1]}, lab)
    ids = select_regions(lab.reshape(-1), min_pixels=1, max_regions=8)
    assert ids.tolist() == [3, 1, 2]  # largest first, ties by smaller id
    r = relation_matrix(region_prototypes(f_t[0].reshape(2, -1), lab.reshape(-1), ids))
    c = 1 / math.sqrt(2)
    assert torch.allclose(r, torch.tensor([[1, c, c], [c, 1, 0], [c, 0, 1.0]]), atol=1e-6)
    # student: region 2 turned toward region 1 -> only the (1,2) relation changes, from 0 to 1
    f_s = feature_map({0: [0, 0], 1: [1, 0], 2: [1, 0], 3: [1, 1]}, lab)
    loss = sgr_loss(f_s, f_t, lab, min_pixels=1, max_regions=8)
    assert loss.item() == pytest.approx(2 * 1.0 / 9, abs=1e-6)  # two entries of a 3x3 matrix differ by 1
    assert sgr_loss(f_t, f_t, lab, min_pixels=1, max_regions=8).item() == pytest.approx(0, abs=1e-7)
    f_s, f_t = torch.randn(1, 2, 4, 6, requires_grad=True), torch.randn(1, 2, 4, 6, requires_grad=True)
    sgr_loss(f_s, f_t, lab, min_pixels=1).backward()
    assert f_s.grad.abs().sum() > 0 and f_t.grad is None  # sg on the teacher


def test_sgr_region_selection_and_degenerate_cases():
    lab = torch.zeros(1, 4, 6, dtype=torch.long)
    lab[:, :2, :3], lab[:, :2, 3:], lab[:, 2:, :] = 1, 2, 3
    ids = select_regions(lab.reshape(-1), min_pixels=7, max_regions=8)
    assert ids.tolist() == [3]
    assert select_regions(lab.reshape(-1), min_pixels=1, max_regions=2).tolist() == [3, 1]
    f_s = torch.randn(2, 4, 4, 6, requires_grad=True)
    f_t = torch.randn(2, 4, 4, 6)
    single = torch.ones(2, 4, 6, dtype=torch.long)  # one segment per image
    loss = sgr_loss(f_s, f_t, single)
    assert loss.item() == 0 and not torch.isnan(loss)
    loss.backward()  # a graph exists even when no image contributes
    unlabelled = torch.zeros(2, 4, 6, dtype=torch.long)  # label 0 is never a segment
    assert sgr_loss(f_s, f_t, unlabelled).item() == 0
    half = unlabelled.clone()
    half[:, :, 3:] = 5  # one real segment beside the unlabelled half: no relation to keep
    assert select_regions(half[0].reshape(-1), min_pixels=1, max_regions=8).tolist() == [5]
    assert sgr_loss(f_s, f_t, half, min_pixels=1).item() == 0
    # one image with two segments, one with a single one: the mean over the batch halves its loss
    mixed = torch.stack([lab[0], single[0]])
    both = sgr_loss(f_s, f_t, torch.stack([lab[0], lab[0]]), min_pixels=1)
    assert sgr_loss(f_s[:1], f_t[:1], lab, min_pixels=1).item() == pytest.approx(
        2 * sgr_loss(f_s, f_t, mixed, min_pixels=1).item(), rel=1e-5)
    assert not torch.isnan(both)


def test_sgr_zero_prototypes_and_bad_arguments():
    lab = torch.zeros(1, 4, 6, dtype=torch.long)
    lab[:, :, :3], lab[:, :, 3:] = 1, 2
    f_s = torch.zeros(1, 2, 4, 6, requires_grad=True)  # all-zero prototypes: cosine defined as 0, no NaN
    loss = sgr_loss(f_s, torch.rand(1, 2, 4, 6), lab, min_pixels=1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(f_s.grad).all()
    with pytest.raises(Sam4irError, match="differ in shape"):
        sgr_loss(torch.zeros(1, 2, 4, 6), torch.zeros(1, 3, 4, 6), lab)
    with pytest.raises(Sam4irError, match="not B x H x W"):
        sgr_loss(f_s, f_s, lab[0])
    with pytest.raises(Sam4irError, match="distill.sgr_min_pixels"):
        sgr_loss(f_s, f_s, lab, min_pixels=0)
    with pytest.raises(Sam4irError, match="distill.sgr_max_regions"):
        sgr_loss(f_s, f_s, lab, max_regions=1)


def test_sgr_resizes_the_label_map_to_the_features():
    lab = torch.zeros(1, 8, 12, dtype=torch.long)
    lab[:, :, 6:] = 1
    lab[:, :, :6] = 2
    f = torch.randn(1, 3, 4, 6)
    assert sgr_loss(f, f.clone(), lab, min_pixels=1).item() == pytest.approx(0, abs=1e-7)


def tiny_pair(prior: str = "mean"):
    name, kwargs = NAFNET
    torch.manual_seed(0)
    ir1 = models.build(name, **kwargs)
    return ir1, build_ir2(ir1, name, kwargs, prior)


def test_spd_by_hand():
    f_s, f_t = torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0.0], [5.0, 4.0]])
    assert spd_loss(f_s, f_t, "l1").item() == pytest.approx((0 + 2 + 2 + 0) / 4)
    assert spd_loss(f_s, f_t, "l2").item() == pytest.approx((0 + 4 + 4 + 0) / 4)


def test_spd_gradient_reaches_only_the_student():
    ir1, ir2 = tiny_pair()
    x, lab = torch.rand(2, 3, 16, 16), torch.randint(1, 4, (2, 16, 16))
    out1 = ir1.forward_train(x)
    out2 = ir2.forward_train(spf_input(out1.images[-1], lab, "mean"))
    loss = spd_loss(out1.features, out2.features + 1.0)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ir1.parameters())
    assert all(p.grad is None for p in ir2.parameters())
    with pytest.raises(Sam4irError, match="shape"):
        spd_loss(torch.zeros(1, 2, 3, 3), torch.zeros(1, 3, 3, 3))
    with pytest.raises(Sam4irError, match="spd_loss"):
        spd_loss(torch.zeros(1), torch.zeros(1), "huber")


def objective(weights: DistillWeights, analyzer: str = "ir_features", priors: bool = True, teacher: str = "frozen",
              baseline: torch.nn.Module | None = None) -> DistillObjective:
    """The SPD objective of ``spd_sgr`` (``no_prior`` without priors) with these weights, as the stage builds it
    from the params' sections."""
    ir1, ir2 = tiny_pair()
    cfg = parse_params(PARAMS, "params.yaml").distill.model_copy(update=dict(
        recon2_weight=weights.recon2, spd_weight=weights.spd, sgr_weight=weights.sgr, analyzer=analyzer,
        spd_loss="l1", sgr_min_pixels=1, sgr_max_regions=8, teacher=teacher))
    spf = parse_params(PARAMS, "params.yaml").spf.model_copy(update=dict(prior="mean", detach_input=False))
    return DistillObjective(ir1, ir2, cfg, spf, recon="psnr", method="spd_sgr" if priors else "no_prior",
                            baseline=baseline, analyzer_pretrained=False)


def batch() -> dict:
    g = torch.Generator().manual_seed(3)
    return {"input": torch.rand(2, 3, 16, 16, generator=g), "target": torch.rand(2, 3, 16, 16, generator=g),
            "mask": torch.randint(0, 5, (2, 16, 16), generator=g)}


def weights_of(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


def test_a_zero_weight_removes_the_term_and_its_computation():
    control = objective(DistillWeights(0, 0, 0))
    assert control.teacher_net is None and "ir2" not in control.nets and control.analyzer is None
    assert set(control(batch())) == {"loss", "recon1"}
    spd_only = objective(DistillWeights(1, 1, 0), teacher="joint")
    calls = []
    spd_only.analyzer.register_forward_hook(lambda *a: calls.append(1))
    terms = spd_only(batch())
    assert set(terms) == {"loss", "recon1", "recon2", "spd"} and calls == [1]
    full = objective(DistillWeights(1, 0.5, 2), teacher="joint")
    terms = full(batch())
    expected = terms["recon1"] + terms["recon2"] + 0.5 * terms["spd"] + 2 * terms["sgr"]
    assert torch.allclose(terms["loss"], expected)


def test_the_frozen_teacher_is_never_updated_and_the_loss_is_the_papers():
    """teacher: frozen is the paper's L = L_rec1 + λ1 L_SPD + λ2 L_SGR: no L_rec2 (whatever recon2_weight says), IR2
    holds no trainable parameter and keeps its weights bit for bit through real training steps, while IR1 learns."""
    from sam4ir.training.fit import TrainConfig, fit

    obj = objective(DistillWeights(recon2=5.0, spd=0.5, sgr=2.0))
    teacher, student = weights_of(obj.teacher_net), weights_of(obj.nets["ir1"])
    assert list(obj.nets) == ["ir1"] and not any(p.requires_grad for p in obj.teacher_net.parameters())
    terms = obj(batch())
    assert set(terms) == {"loss", "recon1", "spd", "sgr"}
    assert torch.allclose(terms["loss"], terms["recon1"] + 0.5 * terms["spd"] + 2 * terms["sgr"])

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

        def __getitem__(self, i: int) -> dict:
            return {k: v[i] for k, v in batch().items()}

    fit(obj, Pairs(), TrainConfig(iters=3, batch_size=2, lr=1e-2, val_every=3, ckpt_every=3))
    assert all(torch.equal(a, b) for a, b in zip(teacher, weights_of(obj.teacher_net)))
    assert not all(torch.equal(a, b) for a, b in zip(student, weights_of(obj.nets["ir1"])))
    assert not obj.teacher_net.training  # fit's train() leaves a frozen teacher in eval mode


def test_the_joint_teacher_trains_with_its_own_reconstruction_loss():
    obj = objective(DistillWeights(1, 1, 1), teacher="joint")
    assert obj.teacher_net is None and all(p.requires_grad for p in obj.nets["ir2"].parameters())
    obj(batch())["loss"].backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in obj.nets["ir2"].parameters())
    frozen = objective(DistillWeights(0, 1, 1), teacher="joint")  # joint without L_rec2: nothing trains IR2
    assert "ir2" not in frozen.nets and not any(p.requires_grad for p in frozen.teacher_net.parameters())


def test_teacher_input_baseline_feeds_ir2_the_frozen_baselines_output():
    """With a baseline, the teacher's features do not depend on the student at all (fixed targets); without
    one, IR2 sees the student's current output, detached: no gradient reaches IR1 through the teacher."""
    base, _ = tiny_pair()
    torch.manual_seed(5)
    with torch.no_grad():  # a baseline unlike the student, and a teacher that is not the identity
        for p in base.parameters():
            p.add_(0.05 * torch.randn_like(p))
    data = batch()
    fixed = objective(DistillWeights(0, 1, 0), analyzer="images", baseline=base)
    with torch.no_grad():
        for p in fixed.teacher_net.parameters():
            p.add_(0.05 * torch.randn_like(p))
        assert not torch.allclose(base(data["input"]), fixed.nets["ir1"](data["input"]), atol=1e-3)
    with torch.no_grad():
        expected = fixed.teacher_net(spf_input(base(data["input"]), data["mask"], "mean"))
        spd = (fixed.nets["ir1"](data["input"]) - expected).abs().mean()
    assert torch.allclose(fixed(data)["spd"], spd)
    assert not any(p.requires_grad for p in base.parameters())
    student = objective(DistillWeights(0, 1, 0), analyzer="images")
    with torch.no_grad():
        for p in student.teacher_net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    y1 = student.nets["ir1"](data["input"])
    with torch.no_grad():
        teacher_out = student.teacher_net(spf_input(y1, data["mask"], "mean"))
    assert torch.allclose(student(data)["spd"], (y1 - teacher_out).abs().mean())


def test_no_prior_is_the_full_method_on_all_zero_masks():
    """The no-prior control reads no label map and computes exactly what all-zero masks give (the same loss and
    gradients, bit for bit), so spd_sgr - no_prior isolates the prior's information."""
    def step(obj: DistillObjective, data: dict) -> tuple[dict, list]:
        terms = obj(data)
        terms["loss"].backward()
        return terms, [p.grad.clone() for p in obj.nets["ir1"].parameters() if p.grad is not None]

    data = batch()
    for teacher in ("frozen", "joint"):
        blank, _ = step(objective(DistillWeights(1, 1, 1), priors=False, teacher=teacher),
                        {k: v for k, v in data.items() if k != "mask"})
        zeros, _ = step(objective(DistillWeights(1, 1, 1), teacher=teacher), {**data, "mask": torch.zeros_like(data["mask"])})
        informed, _ = step(objective(DistillWeights(1, 1, 1), teacher=teacher), data)
        _, blank_grads = step(objective(DistillWeights(1, 1, 1), priors=False, teacher=teacher), data)  # mask ignored
        _, zero_grads = step(objective(DistillWeights(1, 1, 1), teacher=teacher),
                             {**data, "mask": torch.zeros_like(data["mask"])})
        # no regions, no relation to keep: SGR is exactly 0 on all-zero masks, and not computed without priors
        assert zeros["sgr"] == 0 and informed["sgr"] > 0 and "sgr" not in blank
        assert set(blank) == set(zeros) - {"sgr"} and all(torch.equal(blank[k], zeros[k]) for k in blank)
        assert all(torch.equal(a, b) for a, b in zip(blank_grads, zero_grads))


def test_spf_trains_ir2_alone_from_the_students_quality():
    """The SPF scheme: only IR2 learns (IR1 is frozen and not in nets), on the run's priors; at its first step the
    teacher's loss is exactly the student's (IR2 starts as the identity on ŷ1)."""
    ir1, ir2 = tiny_pair()
    spf = SpfObjective(ir1, ir2, recon="psnr", prior="mean")
    assert list(spf.nets) == ["ir2"] and not any(p.requires_grad for p in ir1.parameters())
    data = batch()
    terms = spf(data)
    terms["loss"].backward()
    student = recon_loss("psnr", [ir1(data["input"])], data["target"])
    assert torch.allclose(terms["loss"], student) and set(terms) == {"loss", "recon2"}
    assert all(p.grad is None for p in ir1.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ir2.parameters())
    blind = SpfObjective(ir1, ir2, recon="psnr", prior="mean", priors=False)  # spf_no_prior reads no mask
    assert torch.isfinite(blind({k: v for k, v in data.items() if k != "mask"})["loss"])
    spf.train()
    assert spf.nets["ir2"].training and not spf.student.training


def test_distilled_ir1_loads_strictly_into_the_baseline_class(tmp_path):
    obj = objective(DistillWeights(1, 1, 1))
    name, kwargs = NAFNET
    models.save_model(tmp_path / "model.pt", obj.nets["ir1"], name, kwargs)
    baseline = models.build(name, **kwargs)
    models.load_weights(baseline, tmp_path / "model.pt", strict=True)
    assert type(baseline) is type(obj.nets["ir1"])
    assert models.count_params(baseline) == models.count_params(obj.nets["ir1"])


def test_vgg_analyzer_is_frozen_and_stays_in_eval():
    vgg = build_analyzer("vgg19", pretrained=False)
    assert isinstance(vgg, VGGFeatures) and not any(p.requires_grad for p in vgg.parameters())
    torch.nn.Sequential(vgg).train()
    assert not vgg.training
    ir1, ir2 = tiny_pair()
    x = torch.rand(1, 3, 16, 16)
    out1 = ir1.forward_train(x)
    out2 = ir2.forward_train(spf_input(out1.images[-1], torch.randint(1, 3, (1, 16, 16)), "mean"))
    f_s, f_t = vgg(out1, out2)
    assert f_s.shape == f_t.shape and f_s.shape[1] == 256  # relu3_4 has 256 channels
    assert f_s.requires_grad and not f_t.requires_grad  # the teacher pass keeps no graph (memory)
    spd_loss(f_s, f_t).backward()
    assert all(p.grad is None for p in vgg.parameters())
    assert any(p.grad is not None for p in ir1.parameters())


def test_vgg_gradient_reaches_the_input_image():
    vgg = build_analyzer("vgg19", pretrained=False)
    image = torch.rand(1, 3, 8, 8, requires_grad=True)
    feats = vgg.features(image)
    assert feats.shape == (1, 256, 2, 2)
    feats.square().mean().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


@pytest.fixture
def offline_hub(monkeypatch, tmp_path) -> Path:
    """An empty torch hub cache under tmp_path, and a download that fails as it does without a network."""

    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    return tmp_path / "checkpoints" / "vgg19-dcbb9e9d.pth"


def test_vgg_offline_is_a_one_line_error(offline_hub):
    with pytest.raises(Sam4irError, match="VGG-19 ImageNet weights") as err:
        build_analyzer("vgg19", pretrained=True)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(offline_hub)) and "no network" in message
    assert "distill.analyzer: ir_features" in message
    offline_hub.write_bytes(b"truncated")
    with pytest.raises(Sam4irError, match="cannot read the VGG-19 ImageNet weights"):
        build_analyzer("vgg19", pretrained=True)
    with pytest.raises(Sam4irError, match="distill.analyzer"):
        build_analyzer("resnet")


def test_vgg_loads_the_cached_torchvision_weights(offline_hub):
    torch.manual_seed(0)
    reference = vgg19_relu3_4(pretrained=False)
    state = {f"features.{key}": value for key, value in reference.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # the real file's layers past relu3_4 are left out
    offline_hub.parent.mkdir(parents=True)
    torch.save(state, offline_hub)
    vgg = build_analyzer("vgg19", pretrained=True)
    loaded = vgg.body.state_dict()
    assert loaded.keys() == reference.state_dict().keys()
    assert all(torch.equal(loaded[key], value) for key, value in reference.state_dict().items())

"""The shared training loop: seeded sampling, resume after a kill, and data-parallel equivalence."""

from __future__ import annotations

import json
import os
import shutil
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch.utils.data import Dataset

from sam4ir.errors import Sam4irError
from sam4ir.models import build, save_model
from sam4ir.method.objectives import BaselineObjective
from sam4ir.params.schema import parse_params
from sam4ir.stages.run import live_logger, open_live
from sam4ir.stages.run import build_ir
from sam4ir.training.fit import DistInfo, SampleStream, TrainConfig, fit, rank_indices, saved_iter
from test_schema import with_value

TINY = dict(width=4, enc_blk_nums=[1], middle_blk_num=1, dec_blk_nums=[1])


class NoisyCrops(Dataset):
    """Four fixed 24x24 images; items are random 16x16 crops (drawn from torch's RNG, like PairedDataset)."""

    def __init__(self) -> None:
        g = torch.Generator().manual_seed(1)
        self.targets = torch.rand(4, 3, 24, 24, generator=g)
        self.inputs = (self.targets + 0.1 * torch.randn(4, 3, 24, 24, generator=g)).clamp(0, 1)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict:
        top, left = torch.randint(0, 9, (2,)).tolist()
        return {"input": self.inputs[i, :, top:top + 16, left:left + 16],
                "target": self.targets[i, :, top:top + 16, left:left + 16]}


def objective() -> BaselineObjective:
    torch.manual_seed(0)
    return BaselineObjective(build("nafnet", **TINY), "psnr")


CFG = TrainConfig(iters=12, batch_size=4, lr=1e-3, ckpt_every=4, val_every=100, log_every=1)


def weights(obj: BaselineObjective) -> dict:
    return {k: v.clone() for k, v in obj.nets.state_dict().items()}


def test_sample_stream_is_a_function_of_seed_and_index():
    stream = SampleStream(NoisyCrops(), seed=3, length=100)
    torch.manual_seed(123)
    before = torch.rand(1)
    a, b = stream[7], stream[7]
    assert torch.equal(a["input"], b["input"])
    assert not torch.equal(stream[7]["input"], stream[8]["input"])
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # the caller's RNG stream is untouched
    assert not torch.equal(SampleStream(NoisyCrops(), seed=4, length=100)[7]["input"], a["input"])


def test_rank_indices_split_each_global_batch():
    cfg = TrainConfig(iters=3, batch_size=4, lr=1e-3)
    whole = rank_indices(1, cfg, DistInfo())
    halves = [rank_indices(1, cfg, DistInfo(r, 2)) for r in range(2)]
    assert whole == list(range(4, 12))
    assert sorted(halves[0] + halves[1]) == whole
    assert halves[0][:2] == [4, 5] and halves[1][:2] == [6, 7]
    with pytest.raises(Sam4irError, match="not divisible"):
        rank_indices(0, cfg, DistInfo(0, 3))


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    reference = objective()
    fit(reference, NoisyCrops(), CFG, state_path=tmp_path / "ref.pt", run_id="a")

    class Killed(Exception):
        pass

    def die_at_6(step, record):
        if step == 6:
            raise Killed

    state = tmp_path / "state.pt"
    with pytest.raises(Killed):
        fit(objective(), NoisyCrops(), CFG, state_path=state, run_id="a", log=die_at_6)
    assert saved_iter(state, "a") == 4 and saved_iter(state, "other-config") == 0
    resumed = objective()
    steps = []
    fit(resumed, NoisyCrops(), CFG, state_path=state, run_id="a", log=lambda s, r: steps.append(s))
    assert steps == list(range(5, 13))
    for key, value in weights(reference).items():
        assert torch.equal(value, resumed.nets.state_dict()[key]), key


def test_a_different_run_id_never_resumes(tmp_path):
    state = tmp_path / "state.pt"
    fit(objective(), NoisyCrops(), TrainConfig(iters=8, batch_size=4, lr=1e-3, ckpt_every=4), state_path=state,
        run_id="old")
    steps = []
    fit(objective(), NoisyCrops(), TrainConfig(iters=2, batch_size=4, lr=1e-3, log_every=1), state_path=state,
        run_id="new",
        log=lambda s, r: steps.append(s))
    assert steps == [1, 2]


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 not a whole zip", "truncated"])
def test_a_damaged_resume_state_is_set_aside_in_one_line(tmp_path, capsys, damage):
    """A state cut short by a full disk or a bad copy: one warning naming it, moved aside, the run starts afresh
    and ends with the weights of an uninterrupted run."""
    reference = objective()
    fit(reference, NoisyCrops(), CFG, run_id="a")
    state = tmp_path / "state.pt"
    fit(objective(), NoisyCrops(), CFG, state_path=state, run_id="a")
    state.write_bytes(state.read_bytes()[:200] if damage == "truncated" else damage)
    capsys.readouterr()
    resumed = objective()
    fit(resumed, NoisyCrops(), CFG, state_path=state, run_id="a")
    err = capsys.readouterr().err
    assert f"{state}: damaged resume state" in err and "state.pt.corrupt" in err
    assert (tmp_path / "state.pt.corrupt").is_file()
    for key, value in weights(reference).items():
        assert torch.equal(value, resumed.nets.state_dict()[key]), key


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    from sam4ir.training.fit import init_distributed

    info = init_distributed(torch.device("cpu"))
    obj = objective()
    losses = []
    fit(obj, NoisyCrops(), CFG, info=info, log=lambda s, r: losses.append(r["loss"]))
    if info.main:
        torch.save({"weights": obj.nets.state_dict(), "losses": losses}, out)
    torch.distributed.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_ddp_equals_one_process(tmp_path):
    single = objective()
    losses = []
    fit(single, NoisyCrops(), CFG, log=lambda s, r: losses.append(r["loss"]))
    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, free_port(), str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    assert torch.allclose(torch.tensor(ddp["losses"]), torch.tensor(losses), atol=1e-4)
    for key, value in single.nets.state_dict().items():
        assert torch.allclose(value, ddp["weights"][key], atol=1e-5), key


# --- reproducibility across processes: what DVC sees of two runs of the same params --------------------------

def test_initial_weights_are_a_function_of_train_seed_alone():
    params = parse_params(with_value("train.seed", 3), "params.yaml")
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a, b = build_ir(params), build_ir(params)
    assert torch.equal(torch.random.get_rng_state(), before)  # the caller's RNG is untouched
    other = build_ir(parse_params(with_value("train.seed", 4), "params.yaml"))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert any(not torch.equal(v, other.state_dict()[k]) for k, v in a.state_dict().items())


def test_checkpoints_of_equal_weights_are_equal_bytes(tmp_path):
    net = build("nafnet", **TINY)
    save_model(tmp_path / "a" / "model.pt", net, "nafnet", TINY)
    save_model(tmp_path / "b" / "model.pt", net, "nafnet", TINY)  # another random temp name on the way
    assert (tmp_path / "a" / "model.pt").read_bytes() == (tmp_path / "b" / "model.pt").read_bytes()
    assert not list((tmp_path / "a").glob(".*"))  # no temp file left behind


def test_resumed_run_logs_each_step_once(tmp_path):
    log = live_logger(open_live(tmp_path, 0))
    for step in (10, 20, 30, 40):  # checkpoint at 20, killed after logging 40
        log(step, {"loss": float(step)})
    log = live_logger(open_live(tmp_path, 20))
    for step in (30, 40, 50):
        log(step, {"loss": step + 0.5})
    rows = (tmp_path / "plots" / "metrics" / "loss.tsv").read_text().splitlines()
    assert [r.split("\t")[0] for r in rows] == ["step", "10", "20", "30", "40", "50"]
    assert rows[-2].endswith("40.5")


def test_a_resumed_run_keeps_the_rows_dvc_deleted(tmp_path):
    """DVC deletes a stage's outs (the curves) before re-running it: the resumed run's curves come back from the
    backup beside the resume state, up to the checkpoint, and equal an uninterrupted run's."""
    def run(out, steps, resumed_at=0):
        log = live_logger(open_live(out, resumed_at, tmp_path / "backup"), tmp_path / "backup")
        for step in steps:
            log(step, {"loss": float(step), "val_psnr": 20.0 + step / 100})
        return out / "plots" / "metrics"

    whole = run(tmp_path / "whole", range(10, 60, 10))
    run(tmp_path / "run", (10, 20, 30, 40))  # checkpoint at 20, killed after logging 40
    shutil.rmtree(tmp_path / "run")  # what DVC does before the stage runs again
    resumed = run(tmp_path / "run", (30, 40, 50), resumed_at=20)
    for name in ("loss.tsv", "val_psnr.tsv"):
        steps = lambda folder: [r.split("\t")[:2:] for r in (folder / name).read_text().splitlines()]  # noqa: E731
        assert [r[0] for r in steps(resumed)] == ["step", "10", "20", "30", "40", "50"]
        assert [r[1] for r in steps(resumed)] == [r[1] for r in steps(whole)]
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["val_psnr_best_step"] == 50 and summary["val_psnr"] == summary["val_psnr_best"]
    run(tmp_path / "other", (10,))  # a fresh run starts a fresh backup
    assert (tmp_path / "backup" / "loss.tsv").read_text().count("\n") == 2


def test_training_log_is_a_few_lines_when_not_in_a_terminal(capsys):
    """stderr captured (not a terminal): 40 steps are the bar's first and last draw, not a line per step."""
    fit(objective(), NoisyCrops(), TrainConfig(iters=40, batch_size=2, lr=1e-3), desc="quiet")
    redraws = capsys.readouterr().err.replace("\r", "\n").count("quiet:")
    assert 1 <= redraws <= 3, redraws


class Diverging(torch.nn.Module):
    """A one-weight objective whose loss is NaN from step ``nan_at`` on; ``bad_grad``: its loss stays finite
    (0) but the gradient is NaN (sqrt at 0), which only the clipped gradient norm shows."""

    def __init__(self, nan_at: int, bad_grad: bool = False) -> None:
        super().__init__()
        self.nets = torch.nn.ModuleDict({"ir1": torch.nn.Linear(1, 1)})
        self.nan_at, self.bad_grad, self.calls = nan_at, bad_grad, 0

    def forward(self, batch: dict) -> dict:
        self.calls += 1
        w = self.nets["ir1"].weight.sum()
        if self.calls >= self.nan_at:
            loss = torch.sqrt(w * 0.0) if self.bad_grad else w * float("nan")
        else:
            loss = (w - 1.0) ** 2 + batch["input"].mean() * 0
        return {"loss": loss}


@pytest.mark.parametrize("bad_grad", [False, True], ids=["nan_loss", "nan_grad_norm"])
def test_a_diverged_run_stops_at_the_first_non_finite_step_and_saves_nothing_after_it(tmp_path, bad_grad):
    cfg = TrainConfig(iters=12, batch_size=2, lr=1e-3, ckpt_every=2, log_every=1, val_every=100,
                      grad_clip=1.0 if bad_grad else 0.0)
    state, logged = tmp_path / "state.pt", []
    with pytest.raises(Sam4irError) as e:
        fit(Diverging(nan_at=5, bad_grad=bad_grad), NoisyCrops(), cfg, state_path=state, run_id="a",
            desc="derain/baseline", log=lambda s, r: logged.append(s))
    message = str(e.value)
    assert "\n" not in message and message.startswith("derain/baseline: training diverged at iteration 5 (")
    assert ("gradient norm is nan" if bad_grad else "loss is nan") in message and "train.lr" in message
    assert logged == [1, 2, 3, 4]  # the NaN step is neither logged nor checkpointed
    saved = torch.load(state, weights_only=True)
    assert saved["iter"] == 4 and all(torch.isfinite(v).all() for v in saved["nets"].values())


def test_evaluate_refuses_a_network_whose_output_is_not_finite(tmp_path):
    from sam4ir.stages.evaluate import check_finite
    y = torch.rand(1, 3, 4, 4)
    assert check_finite(y, tmp_path / "model.pt", "rain_001") is y
    y[0, 1, 2, 3] = float("nan")
    with pytest.raises(Sam4irError) as e:
        check_finite(y, tmp_path / "model.pt", "rain_001")
    assert str(e.value).startswith(f"{tmp_path / 'model.pt'}: the network's output on test image rain_001 is not "
                                   "finite") and "\n" not in str(e.value)

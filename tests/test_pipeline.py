"""End to end: the real `dvc repro` of this repository's dvc.yaml on a tiny copy of params.yaml.

One completed tiny workspace is built once per session (the ``workspace`` fixture, tests/conftest.py) and never
changed afterwards; every test that edits, re-runs or experiments works in its own copy of it (``project``), so the
tests pass in any order, and under parallel workers.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from sam4ir.stages import run_stage
# tiny_params: imported by other tests' modules from here
from tiny_pipeline import ENV, GIT, built_once, copy_of, dvc, run, tiny_params, traced  # noqa: F401

pytestmark = pytest.mark.slow  # every test here runs DVC stages: the fast tier (-m "not slow") leaves them out


SAM_SIZES = {"vit_b": dict(encoder_embed_dim=16, encoder_depth=1), "vit_l": dict(encoder_embed_dim=32, encoder_depth=2)}


@pytest.fixture(scope="session")
def sam_experiments(workspace, tmp_path_factory) -> tuple[Path, list[str]]:
    """A copy of the workspace with two experiments of two small random SAMs (the real segment_anything code), and
    what each experiment's `dvc exp run` printed; stage traces in ``../trace``. Built once per session."""
    base = built_once(tmp_path_factory, "sam", lambda base: run_sam_experiments(workspace, base))
    return base / "repo", json.loads((base / "logs.json").read_text())


def run_sam_experiments(workspace: Path, base: Path) -> None:
    from sam4ir.sam import build_sam, save_sam_with_config

    root, env, logs = copy_of(workspace, base / "repo"), traced(base / "trace"), []
    for model_type, size in SAM_SIZES.items():
        torch.manual_seed(0)
        config = dict(encoder_num_heads=2, encoder_global_attn_indexes=[0], image_size=64, window_size=4,
                      prompt_embed_dim=16, decoder_depth=1, decoder_mlp_dim=32, decoder_num_heads=2,
                      iou_head_hidden_dim=16, mask_in_chans=4, **size)
        checkpoint = f"data/sam/small_{model_type}.pth"
        save_sam_with_config(build_sam(**config), config, root / checkpoint)
        logs.append(dvc("exp", "run", "-S", "sam.backend=sam", "-S", f"sam.model_type={model_type}", "-S",
                        f"sam.checkpoint={checkpoint}", "-S", "sam.download=false",
                        "-S", "sam.generator.points_per_side=4", "-S", "sam.generator.pred_iou_thresh=0.0",
                        "-S", "sam.generator.stability_score_thresh=0.0", "-S", "sam.generator.box_nms_thresh=1.0",
                        cwd=root, env=env))
    (base / "logs.json").write_text(json.dumps(logs))


def ran_stages(log: str) -> set[str]:
    return {line.split("'")[1] for line in log.splitlines() if line.startswith("Running stage")}


def stages_of(root: Path) -> dict[str, dict]:
    return yaml.safe_load((root / "dvc.yaml").read_text())["stages"]


def stale_stages(root: Path) -> set[str]:
    """The stages `dvc status` flags as changed (their own deps, params or command; not what follows them)."""
    done = subprocess.run([sys.executable, "-m", "dvc", "status", "--json"], cwd=root, capture_output=True, text=True,
                          env=ENV)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def test_repro_produces_the_report(workspace):
    results = pd.read_csv(workspace / "reports" / "results.csv")
    assert set(results.task) == {"derain"}
    assert {"baseline", "control", "no_prior", "spd_sgr", "ir2", "ir2_no_prior"} <= set(results.method)
    for col in ("psnr", "ssim", "input_psnr", "input_ssim", "params"):
        assert results[col].notna().all(), col
    ir1 = results[~results.method.str.startswith("ir2")]
    assert ir1.groupby("task").params.nunique().eq(1).all()  # distillation never changes IR1's size
    cost = pd.read_csv(workspace / "reports" / "cost.csv")
    assert cost.loc[0, "params"] == cost.loc[1, "params"] and cost.loc[0, "gmacs"] == cost.loc[1, "gmacs"]
    md = (workspace / "reports" / "results.md").read_text()
    assert "needs_sam_at_inference" in md and "classical" in md
    for name in ("training_curves", "loss_terms", "grid_derain"):
        assert (workspace / "reports" / "figures" / f"{name}.png").stat().st_size > 1000
    metrics = json.loads((workspace / "data" / "eval" / "derain" / "metrics.json").read_text())
    assert set(metrics) >= {"input", "baseline", "spd_sgr", "ir2"}


def test_second_repro_is_a_no_op(project):
    out = dvc("repro", cwd=project)
    assert "Running stage" not in out
    assert "up to date" in out


def test_a_rerun_under_other_cpu_dispatch_and_threads_gives_the_same_bytes(project):
    """Every stage again from scratch with torch's generic kernels, oneDNN held to SSE4.1, MKL and OpenMP at two
    threads (unpinned, each of these changes the trained weights): the stages pin their own code paths
    (sam4ir.cpu_pins), so every output has the same bytes, dvc.lock does not change and DVC sees nothing new."""
    lock = (project / "dvc.lock").read_text()
    other = {**ENV, "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "OMP_NUM_THREADS": "2",
             "MKL_NUM_THREADS": "2", "MKL_CBWR": "AUTO", "OPENBLAS_CORETYPE": "Prescott"}
    out = dvc("repro", "--force", cwd=project, env=other)
    assert out.count("Running stage") == len(stages_of(project)), out  # every stage of the one-task DAG
    assert (project / "dvc.lock").read_text() == lock
    assert "Data and pipelines are up to date" in dvc("status", cwd=project)


def test_full_disk_during_evaluate_is_one_line_and_a_rerun_restores_the_outputs(project, monkeypatch):
    from sam4ir.stages import evaluate
    from test_io import full_disk

    outs = [project / "data" / "eval" / "derain" / name for name in ("per_image.csv", "metrics.json")]
    good = [p.read_bytes() for p in outs]
    for path in outs:
        path.unlink()
    monkeypatch.chdir(project)
    monkeypatch.setattr(sys, "argv", ["evaluate", "--task", "derain"])
    with monkeypatch.context() as patch:
        full_disk(patch, 0)
        with pytest.raises(SystemExit) as stop:
            run_stage(evaluate.main)
    assert stop.value.code == 1
    assert not any(path.exists() for path in outs)  # nothing half-written under a real name
    run_stage(evaluate.main)
    assert [p.read_bytes() for p in outs] == good


def test_folder_data_is_tracked_by_content(project):
    """A file added under data/real (where data.source: folder reads) makes prepare_data stale."""
    extra = project / "data" / "real" / "derain" / "train" / "input" / "x.png"
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"new data")
    assert "modified:           data/real" in dvc("status", "prepare_data", cwd=project)


def test_a_hand_edit_committed_with_dvc_commit_reruns_every_stage_that_reads_the_folder(project):
    """An image of data/prepared replaced by hand and recorded with `dvc commit -f prepare_data`: every stage that
    reads the folder is stale (never "up to date" on data it never saw)."""
    first, second = sorted((project / "data" / "prepared" / "derain" / "train" / "input").glob("*.png"))[:2]
    first.write_bytes(second.read_bytes())
    dvc("commit", "-f", "prepare_data", cwd=project)
    readers = {name for name, stage in stages_of(project).items() if "data/prepared" in stage.get("deps", [])}
    assert readers >= {"sam_masks", "train_baseline", "evaluate"}
    assert stale_stages(project) == readers


def test_an_edit_reruns_exactly_the_stages_that_import_the_module(project):
    """io.py decodes every image: an edit there (after the code stage has run) flags every stage; an edit to a
    module only the report imports flags the report alone."""
    everything = set(stages_of(project)) - {"code"}
    with open(project / "src" / "sam4ir" / "io.py", "a") as f:
        f.write("\n# an edit\n")
    dvc("repro", "code", cwd=project)
    assert stale_stages(project) == everything
    run(GIT + ["checkout", "--", "src"], project)
    dvc("repro", "code", cwd=project)
    assert stale_stages(project) == set()
    with open(project / "src" / "sam4ir" / "report" / "figures.py", "a") as f:
        f.write("\n# an edit\n")
    dvc("repro", "code", cwd=project)
    assert stale_stages(project) == {"report"}


def test_remote_cache_shares_masks_and_checkpoints(project, tmp_path):
    dvc("remote", "add", "-d", "team", str(tmp_path / "remote"), cwd=project)
    run(GIT + ["commit", "-qam", "remote"], project)
    dvc("push", cwd=project)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / "data" / "masks" / "derain").exists()
    dvc("pull", cwd=clone)
    assert any((clone / "data" / "masks" / "derain" / "train").glob("*.png"))
    assert (clone / "data" / "runs" / "spd_sgr" / "derain" / "model.pt").is_file()
    out = dvc("repro", cwd=clone)
    assert "Running stage" not in out, out


@pytest.mark.parametrize("key, value, expected", [
    ("distill.sgr_weight", 0.5, {"distill", "report"}),   # never the data, masks, baseline, teachers or no_prior
    ("spf.iters", 5, {"spf", "spf_no_prior", "report"}),  # the teachers, never a student directly
    ("distill.iters", 5, {"control", "no_prior", "distill", "report"}),  # the control matches the iterations
    ("sam.backend", "oracle", {"sam_masks", "evaluate"}),              # no_prior reads no label map
    # the students declare train.lr for distill.init: scratch (their baseline's recipe)
    # (the teachers declare all of train: its iters and lr reach them through the baseline they depend on anyway)
    ("train.lr", 0.002, {"train_baseline", "spf", "spf_no_prior", "control", "no_prior", "distill"}),
    ("train.batch_size", 4, {"train_baseline", "spf", "spf_no_prior", "control", "no_prior", "distill"}),
    # another seed retrains the baseline and everything trained from it (the report states the seed)
    ("train.seed", 1, {"train_baseline", "spf", "spf_no_prior", "control", "no_prior", "distill", "report"}),
    ("eval.crop_border", 4, {"evaluate"}),
])
def test_a_param_reruns_only_the_stages_that_read_it(workspace, tmp_path, key, value, expected):
    """The stages a param change invalidates directly (`dvc status`: nothing runs); DVC re-runs what depends on
    their outputs after them. Only params.yaml changes, so this copy holds just the files DVC's status reads."""
    project = copy_of(workspace, tmp_path / "repo")
    params = yaml.safe_load((project / "params.yaml").read_text())
    section, name = key.split(".")
    params[section][name] = value
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert stale_stages(project) == expected


def test_a_loss_weight_sweep_retrains_only_the_student(project):
    """A λ experiment pays for what it changes: the student, its evaluation and the report; never the data, the
    masks, the baseline, the SPF teachers, the control or no_prior (SGR is zero without regions)."""
    out = dvc("exp", "run", "--temp", "-S", "distill.sgr_weight=0.5", cwd=project)
    assert ran_stages(out) == {"distill", "evaluate", "report"}, out


def test_sam_size_table_from_two_small_sams(sam_experiments, tmp_path):
    """Two small random SAMs: masks -> distill -> evaluate per experiment, then the SAM-size table over
    sam.model_type (its numbers mean nothing: random SAM weights, tiny data)."""
    root, logs = sam_experiments
    for log in logs:
        # another prior source re-runs the masks and what reads them; the baseline, control and no_prior are reused
        assert ran_stages(log) == {"sam_masks", "spf", "distill", "evaluate", "report"}, log
    run([sys.executable, "-m", "sam4ir.stages.paper_tables", "sam_size", "--out", str(tmp_path)], root)
    table = pd.read_csv(tmp_path / "sam_size.csv")
    mean = table[table.set == "mean"]
    assert set(mean["sam.model_type"]) == set(SAM_SIZES)  # the other experiments' priors were not SAM's
    for model_type in SAM_SIZES:
        rows = mean[mean["sam.model_type"] == model_type]
        assert {"baseline", "control", "no_prior", "spd_sgr", "ir2"} <= set(rows.method)
        assert (rows.segments_per_image > 0).all() and (rows.priors == "sam").all()
    assert "vit_b" in (tmp_path / "sam_size.md").read_text()


def test_a_plain_network_of_ones_own_runs_the_whole_dag_and_restores(project, tmp_path):
    """`model.name` as an import path (tests/own_nets.py: a plain nn.Module, wrapped by the library): baseline,
    teachers, control, no_prior, distillation, evaluation and report all run with it, and `sam4ir restore` restores
    an image with the distilled checkpoint, which names the network itself."""
    from sam4ir.io import read_image

    out = dvc("exp", "run", "-S", "model.name=tests.own_nets.TinyDnCNN",
              "-S", "+model.args.tests.own_nets.TinyDnCNN={width: 8, depth: 3}", cwd=project)
    assert ran_stages(out) == {"train_baseline", "spf", "spf_no_prior", "control", "no_prior", "distill", "evaluate",
                               "report"}, out
    results = pd.read_csv(project / "reports" / "results.csv")
    assert set(results.method) >= {"baseline", "control", "no_prior", "spd_sgr", "ir2"}
    assert results[results.method.isin(["baseline", "spd_sgr"])].params.nunique() == 1
    image = sorted((project / "data" / "prepared" / "derain" / "test" / "input").glob("*.png"))[0]
    command = Path(sys.executable).parent / "sam4ir"  # the console script pip installs (requirements: -e .)
    run([str(command) if command.exists() else sys.executable, *([] if command.exists() else ["-m", "sam4ir"]),
         "restore", "--checkpoint", "data/runs/spd_sgr/derain/model.pt", "--input", str(image),
         "--output", str(tmp_path / "restored")], project)
    assert read_image(tmp_path / "restored" / image.name).shape == read_image(image).shape


def traces(*roots: Path, kind: str) -> dict[str, set[str]]:
    """{stage command: what its processes recorded} over the trace files beside ``roots`` (a task's own process,
    ``... --task T``, counts for its stage's command)."""
    found: dict[str, set[str]] = {}
    for root in roots:
        for line in (root.parent / "trace" / f"{kind}.jsonl").read_text().splitlines():
            record = json.loads(line)
            argv = record["argv"]
            if "--task" in argv:  # a task's process of a stage (sam4ir.stages.shared.tasks)
                at = argv.index("--task")
                argv = argv[:at] + argv[at + 2:]
                argv = [a for a in argv if a not in ("--params", "params.yaml")]
            found.setdefault(" ".join(["python", *argv]), set()).update(record["reads" if kind == "params" else "modules"])
    return found


def test_every_stage_s_code_record_covers_every_module_its_processes_imported(workspace, sam_experiments):
    """What each stage process really imported (the default run and the SAM experiments, whose masks import the
    segment_anything wrappers) is inside the code record its dvc.yaml entry depends on: an edit to any of those
    modules re-runs the stage."""
    imported = traces(workspace, sam_experiments[0], kind="imports")
    stages = stages_of(workspace)
    assert {s["cmd"].split("#")[0].strip() for s in stages.values()} <= set(imported), "a stage never ran"
    for name, stage in stages.items():
        record = next(d for d in stage["deps"] if d.startswith(("data/code/", "src/")))
        if name == "code":
            continue
        covered = set(json.loads((workspace / record).read_text())["modules"])
        missing = imported[stage["cmd"].split("#")[0].strip()] - covered
        assert not missing, f"{name}: {record} misses {sorted(missing)}"


# What a stage may read without declaring it (it cannot change the outputs), and what it declares but reads only on
# a branch that no run of this module takes. Everything else must match exactly.
UNDECLARED = {"prepare_data": {"train.crop": "checked against folder/download data, not used",
                               "eval.crop_border": "checked against folder/download data, not used"},
              "sam_masks": {"sam.batch_size": "how many images per SAM batch",
                            "sam.device": "where SAM runs", "sam.download": "whether a missing checkpoint is fetched"},
              "evaluate": {"sam.download": "whether a missing checkpoint is fetched"}}
# What a stage declares without reading it because its result depends on it anyway, through a dependency: the
# teachers train at spf.iters and spf.lr, but train.iters and train.lr make the baseline they start from. Declaring
# the whole section costs no extra re-run and keeps DVC's params check of a no-op short (one key, not sixteen).
THROUGH_DEPS = {"spf": {"train.iters": "the baseline", "train.lr": "the baseline"},
                "spf_no_prior": {"train.iters": "the baseline", "train.lr": "the baseline"}}
# What a stage declares with a section it otherwise reads whole, though it reads this key untraced (a guard every
# stage sets): declaring the section as one key keeps DVC's params check short.
WITH_SECTION = {"prepare_data": {"data.max_pixels": "whether an image is refused: prepare_data fails, or not"}}
STUDENT_BRANCHES = {"train.iters": "distill.init: scratch", "train.lr": "distill.init: scratch"}
SPD_BRANCHES = {**STUDENT_BRANCHES, "distill.recon2_weight": "distill.teacher: joint",
                "spf.detach_input": "distill.teacher: joint"}
BRANCHES = {
    "prepare_data": {"data.val_pairs": "sources other than scenes", "data.demo": "data.source: demo",
                     "data.folder": "data.source: folder", "data.download": "data.source: download",
                     "data.subimages": "folder and download sources"},
    "sam_masks": {"sam.shuffle_from": "sam.backend: shuffled", "sam.shuffle_seed": "sam.backend: shuffled"},
    "control": STUDENT_BRANCHES, "no_prior": SPD_BRANCHES, "distill": SPD_BRANCHES,
    "report": {"distill.recon2_weight": "distill.teacher: joint", "spf.detach_input": "distill.teacher: joint",
               "train.iters": "distill.init: scratch (the schedule it states)"},
}


# dvc.yaml declares `model` whole; a stage reads the chosen network's arguments (model.args.nafnet here). The
# networks not chosen are declared with them.
CHOSEN = "model.args.<chosen network>"


def chosen(keys) -> set[str]:
    """``keys`` with the networks' arguments as CHOSEN (``model``, declared whole: its name, feature layer and args)."""
    found = set()
    for key in keys:
        if key == "model":
            found |= {"model.name", "model.feature_layer", CHOSEN}
        else:
            found.add(CHOSEN if key == "model.args" or key.startswith("model.args.") else key)
    return found


def leaves(params, keys) -> set[str]:
    """The dotted leaf keys under ``keys`` (a section stands for all its fields; a mapping value is one leaf)."""
    from sam4ir.params.schema import Section

    found = set()
    for key in keys:
        if key == CHOSEN:
            found.add(key)
            continue
        node = params
        for part in key.split("."):
            node = getattr(node, part)
        if isinstance(node, Section):
            found |= leaves(params, [f"{key}.{name}" for name in type(node).model_fields])
        else:
            found.add(key)
    return found


def test_every_stage_declares_exactly_the_params_it_reads(workspace, sam_experiments):
    """Each stage process of the default run and of the SAM experiments recorded the params keys it read. A stage
    reading a key its dvc.yaml entry does not declare would not re-run when that key changes (a stale result); one
    declaring a key it never reads re-runs for nothing (sweeps pay for it)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    from sam4ir.params.config import load_params

    params = load_params(workspace / "params.yaml")
    reads = traces(workspace, sam_experiments[0], kind="params")
    with Repo(str(workspace)) as repo:
        stages = list(repo.index.stages)
    # every stage that reads params ran and recorded them (the code stage reads none, so records nothing)
    assert {s.cmd for s in stages if s.name != "code"} <= set(reads), "a stage of dvc.yaml never ran"
    for stage in stages:
        name = stage.name
        declared = leaves(params, chosen(k for d in stage.deps if isinstance(d, ParamsDependency) for k in d.params))
        read = leaves(params, chosen(reads.get(stage.cmd, set())))
        undeclared = leaves(params, UNDECLARED.get(name, {}))
        branch_only = leaves(params, {**BRANCHES.get(name, {}), **THROUGH_DEPS.get(name, {}),
                                      **WITH_SECTION.get(name, {})})
        assert read - declared - undeclared == set(), f"{stage.name} reads params dvc.yaml does not declare"
        assert declared - read - branch_only == set(), f"{stage.name} declares params it never reads"
        assert branch_only <= declared and not undeclared & declared, stage.name

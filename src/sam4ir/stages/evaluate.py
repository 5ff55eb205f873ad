"""Stage ``evaluate``: PSNR/SSIM (BasicSR conventions) of every trained IR1 on the task's test pairs.

Also the downstream-segmentation check (``eval.segmentation_check``): masks of each restored image, made by
the configured SAM backend, matched against the masks of the clean target (matching mIoU).

Scores are means per test set and, where a task tests on several sets, their unweighted mean (``sam4ir.scores``).
Rows: the degraded input itself, baseline, control, no_prior and spd_sgr (IR1 alone, no SAM at inference),
``ir2`` — the SPF teacher (stage ``spf``) on the baseline's output, fed the priors of the test image, an upper
reference that *needs SAM at inference* — and ``ir2_no_prior``, its no-region twin (stage ``spf_no_prior``):
what the cascade gains without information.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from sam4ir import models
from sam4ir.data import scan_pairs
from sam4ir.errors import Sam4irError
from sam4ir.inference import to_tensor, to_uint8
from sam4ir.io import atomic_path, read_image, read_label_map, write_image, write_json
from sam4ir.method.spf import spf_input
from sam4ir.metrics import calculate_psnr, calculate_ssim
from sam4ir.progress import progress_bar
from sam4ir.sam.names import IMAGE_BACKENDS
from sam4ir.scores import summarise_scores
from sam4ir.segmentation_check import matching_miou
from sam4ir.stages import run_stage
from sam4ir.stages.shared.args import load_task_params, stage_args
from sam4ir.stages.shared.paths import EVALUATED, TaskPaths
from sam4ir.stages.shared.tasks import run_tasks
from sam4ir.stages.sam_masks import build_segmenter
from sam4ir.training.fit import resolve_device

IR2_ROW = "ir2"
IR2_ROWS = {IR2_ROW: "spf", "ir2_no_prior": "spf_no_prior"}  # row -> the SPF run whose IR2 it is (fed the baseline)


def check_finite(y: torch.Tensor, checkpoint: Path, image: str) -> torch.Tensor:
    """``y`` if every value is finite: ``to_uint8`` would turn NaN into black pixels and score a broken network
    (a diverged run, a damaged checkpoint) as a bad but valid one."""
    if not torch.isfinite(y).all():
        raise Sam4irError(f"{checkpoint}: the network's output on test image {image} is not finite (NaN/inf); "
                          "retrain it (a diverged run?)")
    return y


def run_task(args: argparse.Namespace) -> None:
    params = load_task_params(args)
    paths = TaskPaths(args.task)
    crop, n_save = params.eval.crop_border, params.eval.save_images
    if args.task not in params.eval.test_y_channel:
        raise params.error(f"eval.test_y_channel.{args.task}", "missing: say whether PSNR/SSIM use the Y channel")
    y_channel = params.eval.test_y_channel[args.task]
    prior = params.spf.prior
    device = resolve_device(params.train.device)
    files = {m: paths.run(m) / "model.pt" for m in EVALUATED}
    files.update({row: paths.run(run) / "ir2.pt" for row, run in IR2_ROWS.items()})
    nets = {method: models.load_model(file, device) for method, file in files.items()}

    segment = None
    backend = params.sam.backend
    if params.eval.segmentation_check and backend in IMAGE_BACKENDS:
        segment, _ = build_segmenter(params, {"backend": backend})  # the controls do not segment pixels

    rows = []
    pairs = scan_pairs(paths.prepared, "test")
    for i, pair in enumerate(progress_bar(pairs, desc=f"evaluate {args.task}")):
        degraded, target = read_image(pair.input), read_image(pair.target)
        x = to_tensor(degraded).to(device)
        mask = torch.from_numpy(read_label_map(paths.masks / "test" / f"{pair.name}.png")).unsqueeze(0).to(device)
        labels = {IR2_ROW: mask, "ir2_no_prior": torch.zeros_like(mask)}
        outputs = {"input": degraded}
        with torch.no_grad():
            y1 = nets["baseline"](x)  # what the SPF teachers were trained to restore
            for method, net in nets.items():
                y = net(spf_input(y1, labels[method], prior)) if method in IR2_ROWS else net(x)
                outputs[method] = to_uint8(check_finite(y, files[method], pair.name))
        clean_labels = segment([target])[0] if segment else None
        for method, img in outputs.items():
            row = {"task": args.task, "method": method, "set": pair.test_set, "name": pair.name,
                   "psnr": calculate_psnr(img, target, crop, test_y_channel=y_channel, color_order="rgb"),
                   "ssim": calculate_ssim(img, target, crop, test_y_channel=y_channel, color_order="rgb")}
            if segment:
                row["seg_miou"] = matching_miou(segment([img])[0], clean_labels)
            rows.append(row)
            if i < n_save:
                write_image(paths.eval / "images" / method / f"{pair.name}.png", img)
        if i < n_save:  # the report's image grids read only data/eval
            write_image(paths.eval / "images" / "target" / f"{pair.name}.png", target)

    per_image = pd.DataFrame(rows)
    with atomic_path(paths.eval / "per_image.csv") as tmp:
        per_image.to_csv(tmp, index=False, float_format="%.6f")
    columns = [c for c in ("psnr", "ssim", "seg_miou") if c in per_image]
    metrics = summarise_scores(per_image, columns)
    for method, net in nets.items():  # the network evaluated, counted from its checkpoint: the tables' size column
        metrics[method]["params"] = models.count_params(net)
    masks = json.loads((paths.masks / "summary.json").read_text())  # what the priors were: the SAM-size table's
    metrics["masks"] = {"backend": masks["backend"], "segments_per_image": masks["mean_segments"]}
    write_json(paths.eval / "metrics.json", metrics)


def main() -> None:
    run_tasks(stage_args(__doc__), run_task)


if __name__ == "__main__":
    run_stage(main)

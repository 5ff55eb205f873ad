"""SAM mask extraction on CPU: a tiny random SAM built from segment_anything's own modules runs the real code path."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data
import torch
import yaml
from segment_anything.utils.amg import mask_to_rle_pytorch

from local_http import serve
from test_io import full_disk

import sam4ir
from sam4ir.params.config import load_params
from sam4ir.datasets.subimages import read_windows
from sam4ir.errors import Sam4irError
from sam4ir.io import read_image, read_label_map, write_image
from sam4ir.sam import (ClassicalSegmenter, SamSegmenter, build_sam, ensure_checkpoint, extract_masks,
                        generator_kwargs, load_sam, masks_to_label_map, save_sam_with_config, segments_to_label_map,
                        select_shard)
from sam4ir.sam.controls import ShuffledRegions, derangement
from sam4ir.stages import sam_masks

TINY_SAM = dict(encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2, encoder_global_attn_indexes=[1],
                image_size=64, window_size=4, prompt_embed_dim=32, decoder_depth=1, decoder_mlp_dim=64,
                decoder_num_heads=2, iou_head_hidden_dim=32, mask_in_chans=4)
# Random weights predict heavily overlapping masks; keeping them all (no score filters, NMS off) gives many segments.
REPO = Path(__file__).resolve().parents[1]
RELAXED = dict(points_per_side=6, pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)


def _photo(size: tuple[int, int], which: str = "astronaut") -> np.ndarray:
    """A real photo resized to ``(W, H)``: RGB uint8 ``H x W x 3``."""
    return cv2.resize(getattr(skimage.data, which)(), size, interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "sam_tiny.pth"
    save_sam_with_config(build_sam(**TINY_SAM), TINY_SAM, path)
    return path


@pytest.fixture(scope="module")
def tiny_sam(tiny_ckpt):
    torch.set_num_threads(2)
    return load_sam("vit_b", tiny_ckpt, "cpu")


def _square(shape, y0, x0, size) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y0:y0 + size, x0:x0 + size] = True
    return mask


# --- label maps -------------------------------------------------------------------------------------------------

def test_masks_painted_large_first_and_renumbered():
    shape = (12, 10)
    big, small, hidden = _square(shape, 0, 0, 8), _square(shape, 2, 2, 3), _square(shape, 3, 3, 1)
    masks = [{"segmentation": m, "area": int(m.sum())} for m in (small, hidden, big)]
    masks.append({"segmentation": mask_to_rle_pytorch(torch.from_numpy(_square(shape, 9, 6, 2))[None])[0], "area": 4})
    lab = masks_to_label_map(masks, shape)
    # painting order by area: big (64) -> 1, small (9) -> 2, RLE square (4) -> 3, hidden (1) -> 4, painted last on top
    assert lab.dtype == np.uint16 and lab.shape == shape
    assert lab[0, 0] == 1 and lab[2, 2] == 2 and lab[9, 6] == 3 and lab[3, 3] == 4 and lab[11, 0] == 0
    assert (lab == 2).sum() == 8  # the 1-px mask painted over one of its pixels


def test_fully_covered_mask_disappears_and_ids_stay_contiguous():
    shape = (6, 6)
    under = _square(shape, 0, 0, 2)  # area 4, painted after `big` but before the two that cover it
    tops = [_square(shape, 0, 0, 2) & ~_square(shape, 1, 0, 2), _square(shape, 1, 0, 2) & _square(shape, 0, 0, 2)]
    masks = [{"segmentation": _square(shape, 0, 0, 5), "area": 25}, {"segmentation": under, "area": 4}]
    masks += [{"segmentation": t, "area": 3 - i} for i, t in enumerate(tops)]  # areas 3 and 2: painted after `under`
    lab = masks_to_label_map(masks, shape)
    assert sorted(np.unique(lab)) == [0, 1, 2, 3]  # `under` (would be id 2) vanished; ids renumbered
    assert (lab[:2, :2] > 1).all() and lab[4, 4] == 1


def test_segments_to_label_map_orders_by_area():
    seg = np.array([[5, 5, 5, 9], [7, 7, 5, 9]])
    lab = segments_to_label_map(seg)
    assert lab.dtype == np.uint16
    np.testing.assert_array_equal(lab, [[1, 1, 1, 3], [2, 2, 1, 3]])  # tie 7 vs 9: smaller value first


# --- real SAM code path with a tiny model ----------------------------------------------------------------------

def _check_label_map(lab: np.ndarray, image: np.ndarray) -> None:
    assert lab.shape == image.shape[:2] and lab.dtype == np.uint16
    ids = np.unique(lab[lab > 0])
    np.testing.assert_array_equal(ids, np.arange(1, len(ids) + 1))  # contiguous ids


def test_sam_label_map_on_photo_roundtrips_png(tiny_sam, tmp_path):
    image = _photo((96, 80))
    lab = SamSegmenter(tiny_sam, RELAXED)([image])[0]
    _check_label_map(lab, image)
    assert lab.max() > 5
    write_image(tmp_path / "m.png", lab)
    np.testing.assert_array_equal(read_label_map(tmp_path / "m.png"), lab)


def test_batched_encoder_matches_one_image_at_a_time(tiny_sam):
    images = [_photo((96, 80)), _photo((64, 96), "coffee"), _photo((72, 72), "chelsea")]
    seg = SamSegmenter(tiny_sam, RELAXED)
    encoded = []
    hook = tiny_sam.image_encoder.register_forward_hook(lambda mod, inp, out: encoded.append(inp[0].shape[0]))
    try:
        batched = seg(images)
        single = [seg([img])[0] for img in images]
    finally:
        hook.remove()
    assert encoded == [3, 1, 1, 1]  # one encoder call for the batch, then one per image
    for b, s in zip(batched, single):
        np.testing.assert_array_equal(b, s)
    assert len({b.max() for b in batched}) > 1  # different images, different maps


def test_crop_layers_use_the_generators_own_encoding(tiny_sam):
    image = _photo((80, 64))
    lab = SamSegmenter(tiny_sam, {**RELAXED, "crop_n_layers": 1})([image, image])
    for one in lab:
        _check_label_map(one, image)
    np.testing.assert_array_equal(lab[0], lab[1])


def test_rle_output_mode_gives_the_same_map(tiny_sam):
    image = _photo((96, 80))
    a = SamSegmenter(tiny_sam, RELAXED)([image])[0]
    b = SamSegmenter(tiny_sam, {**RELAXED, "output_mode": "uncompressed_rle"})([image])[0]
    np.testing.assert_array_equal(a, b)


def test_generator_params_are_validated():
    assert generator_kwargs({"points_per_side": 4})["pred_iou_thresh"] == 0.88  # SAM's default kept
    with pytest.raises(Sam4irError, match="sam.generator.points_per_sid"):
        generator_kwargs({"points_per_sid": 4})
    with pytest.raises(Sam4irError, match="output_mode"):
        generator_kwargs({"output_mode": "coco_rle"})


def test_load_sam_errors_are_one_line(tiny_ckpt, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    state = torch.load(tiny_ckpt, weights_only=True)
    del state["state_dict"]["mask_decoder.iou_token.weight"]
    torch.save(state, tmp_path / "partial.pth")
    torch.save({"image_encoder.pos_embed": torch.zeros(1)}, tmp_path / "foreign.pth")
    cases = {tmp_path / "absent.pth": "not found", bad: "not a readable SAM checkpoint",
             tmp_path / "partial.pth": "1 missing keys", tmp_path / "foreign.pth": "does not match SAM vit_b"}
    for path, expected in cases.items():
        with pytest.raises(Sam4irError, match=expected) as err:
            load_sam("vit_b", path)
        assert "\n" not in str(err.value) and str(path) in str(err.value)


# --- classical backend ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", ["felzenszwalb", "slic"])
def test_classical_segments_a_photo(method):
    image = _photo((96, 80))
    lab = ClassicalSegmenter(method, n_segments=20)([image])[0]
    _check_label_map(lab, image)
    assert lab.min() == 1 and lab.max() > 1
    counts = np.bincount(lab.ravel())[1:]
    assert (np.diff(counts) <= 0).all()  # ids by area, largest first


# --- extraction: resume and shards -----------------------------------------------------------------------------

class _Counting:
    def __init__(self, segmenter):
        self.segmenter, self.images = segmenter, 0

    def __call__(self, images):
        self.images += len(images)
        return self.segmenter(images)


def _write_photos(folder: Path, n: int) -> list[Path]:
    paths = []
    for i in range(n):
        paths.append(folder / f"img{i:02d}.png")
        write_image(paths[-1], np.roll(_photo((48, 40)), 7 * i, axis=1))
    return paths


def test_extract_resumes_and_skips_done_images(tiny_sam, tmp_path):
    paths = _write_photos(tmp_path / "in", 5)
    seg = _Counting(SamSegmenter(tiny_sam, RELAXED))
    first = extract_masks(paths, tmp_path / "out", seg, batch_size=2, progress=False)
    assert first["written"] == 5 and seg.images == 5
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [p.name for p in paths]
    assert sorted(json.loads((tmp_path / "out" / "maps.json").read_text())) == [p.name for p in paths]
    (tmp_path / "out" / "img03.png").unlink()
    second = extract_masks(paths, tmp_path / "out", seg, batch_size=2, progress=False)
    assert second == {**second, "written": 1, "skipped": 4} and seg.images == 6


def test_shards_cover_every_image_exactly_once(tmp_path):
    paths = [tmp_path / f"{c}.png" for c in "gcaebfdh"]
    shards = [select_shard(paths, (i, 3)) for i in range(3)]
    assert sorted(p for s in shards for p in s) == sorted(paths)
    assert shards[0] == sorted(paths)[0::3]
    images = _write_photos(tmp_path / "in", 4)
    seg = _Counting(ClassicalSegmenter())
    for i in range(3):
        extract_masks(images, tmp_path / "out", seg, shard=(i, 3), progress=False)
    assert seg.images == 4 and len(list((tmp_path / "out").glob("*.png"))) == 4


# --- checkpoints -------------------------------------------------------------------------------------------------

def test_missing_checkpoint_without_download_is_one_line(tmp_path):
    dest = tmp_path / "sam_vit_b_01ec64.pth"
    with pytest.raises(Sam4irError) as err:
        ensure_checkpoint("vit_b", dest, download=False)
    msg = str(err.value)
    assert "\n" not in msg and str(dest) in msg and "https://dl.fbaipublicfiles.com/segment_anything/" in msg


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def file_server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    for srv in serve(functools.partial(_QuietFiles, directory=str(root))):
        yield root, srv.url


def test_checkpoint_download_checks_md5_prefix_of_the_name(tiny_ckpt, file_server, tmp_path):
    root, url = file_server
    data = tiny_ckpt.read_bytes()
    good = f"sam_vit_t_{hashlib.md5(data).hexdigest()[:6]}.pth"
    (root / good).write_bytes(data)
    (root / "sam_vit_t_abcdef.pth").write_bytes(data)
    dest = ensure_checkpoint("vit_b", tmp_path / "ckpt" / "sam.pth", download=True, url=f"{url}/{good}",
                             progress=False)
    assert load_sam("vit_b", dest).image_encoder.img_size == TINY_SAM["image_size"]
    with pytest.raises(Sam4irError, match="md5 prefix mismatch .*expected abcdef"):
        ensure_checkpoint("vit_b", tmp_path / "other.pth", download=True, url=f"{url}/sam_vit_t_abcdef.pth",
                          progress=False)
    assert not (tmp_path / "other.pth").exists()


# --- the stage -----------------------------------------------------------------------------------------------------

@pytest.fixture
def stage_dir(tmp_path, tiny_ckpt, monkeypatch):
    for split, n in (("train", 3), ("test", 2)):
        for kind, shift in (("input", 0), ("target", 11)):
            folder = tmp_path / "data" / "prepared" / "derain" / split / kind
            for i in range(n):
                write_image(folder / f"{split}{i}.png", np.roll(_photo((40, 32)), 5 * i + shift, axis=0))
    params = yaml.safe_load((REPO / "params.yaml").read_text())  # the whole file: stages check all of it
    params["tasks"] = ["derain"]
    params["sam"].update(backend="sam", source="degraded", model_type="vit_b", checkpoint=str(tiny_ckpt),
                         download=False, device="cpu", amp="none", batch_size=2)
    params["sam"]["generator"].update(RELAXED)
    params["sam"]["classical"].update(method="felzenszwalb", scale=100, sigma=0.8, min_size=20)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _set_params(root: Path, **sam):
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["sam"].update(sam)
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_stage_writes_label_maps_summary_and_resumes(stage_dir, monkeypatch):
    masks = stage_dir / "data" / "masks" / "derain"
    sam_masks.main(["--task", "derain", "--shard", "1/2"])
    summary = json.loads((masks / "summary.json").read_text())
    assert summary["label_maps"] == 2 and not summary["complete"]  # shard 1/2: train1, test1
    sam_masks.main(["--task", "derain"])
    summary = json.loads((masks / "summary.json").read_text())
    assert summary["backend"] == "sam" and summary["model_type"] == "vit_b" and summary["complete"]
    assert summary["splits"]["train"] == {**summary["splits"]["train"], "images": 3, "label_maps": 3}
    run_log = json.loads((stage_dir / "data" / "logs" / "sam_masks" / "derain.json").read_text())
    assert run_log == {**run_log, "written": 3, "skipped": 2}  # shard 1/2 had done 2 of the 5 maps
    assert not {"written", "skipped", "seconds", "shard"} & set(summary)  # the DVC out holds no run facts
    assert summary["mean_segments"] > 1
    lab = read_label_map(masks / "train" / "train0.png")
    assert lab.shape == (32, 40)

    calls = []
    with monkeypatch.context() as patch:
        patch.setattr(SamSegmenter, "__call__", lambda self, images: calls.append(images) or [])
        sam_masks.main(["--task", "derain"])  # everything done: the model is never asked
    assert calls == []

    _set_params(stage_dir, backend="classical")  # other settings: old maps are dropped, not mixed in
    sam_masks.main(["--task", "derain"])
    summary = json.loads((masks / "summary.json").read_text())
    assert summary["backend"] == "classical" and summary["complete"]
    assert json.loads((stage_dir / "data" / "logs" / "sam_masks" / "derain.json").read_text())["written"] == 5
    assert read_label_map(masks / "train" / "train0.png").min() == 1  # classical maps cover every pixel


def test_stage_recomputes_maps_when_the_images_change(stage_dir):
    _set_params(stage_dir, backend="classical")
    masks = stage_dir / "data" / "masks" / "derain"
    sam_masks.main(["--task", "derain"])
    image = stage_dir / "data" / "prepared" / "derain" / "train" / "input" / "train1.png"
    new = np.ascontiguousarray(read_image(image)[::-1])  # new data under the same file name (another seed, say)
    write_image(image, new)
    sam_masks.main(["--task", "derain"])
    assert json.loads((masks / "summary.json").read_text())["complete"]
    assert json.loads((stage_dir / "data" / "logs" / "sam_masks" / "derain.json").read_text())["written"] == 5
    fresh, _ = sam_masks.build_segmenter(load_params(stage_dir / "params.yaml"), {"backend": "classical"})
    assert np.array_equal(read_label_map(masks / "train" / "train1.png"), fresh([new])[0])


def test_damaged_maps_are_redone_and_temp_files_ignored(stage_dir, capsys):
    """A 0-byte map (full disk), a truncated one and a killed writer's temp file: the two maps are recomputed to
    the same bytes, the temp file is never read as an image nor declares the maps stale."""
    _set_params(stage_dir, backend="classical")
    masks = stage_dir / "data" / "masks" / "derain"
    sam_masks.main(["--task", "derain"])
    good = {p: p.read_bytes() for p in masks.rglob("*.png")}
    (masks / "train" / "train0.png").write_bytes(b"")
    (masks / "test" / "test1.png").write_bytes(good[masks / "test" / "test1.png"][:-20])
    planted = stage_dir / "data" / "prepared" / "derain" / "train" / "input" / ".train0.png.x1y2.partial"
    planted.write_bytes(b"\x89PNG half")
    (masks / "train" / ".train1.png.abc.partial").write_bytes(b"")
    capsys.readouterr()
    sam_masks.main(["--task", "derain"])
    assert {p: p.read_bytes() for p in masks.rglob("*.png")} == good
    assert json.loads((stage_dir / "data" / "logs" / "sam_masks" / "derain.json").read_text())["written"] == 2
    err = capsys.readouterr().err
    assert "do not match what was recorded" in err and "train0.png" in err and "test1.png" in err
    assert not list(masks.rglob("*.partial"))  # a leftover temp file is not hashed into the DVC out


def test_an_altered_but_decodable_map_is_recomputed(stage_dir, capsys):
    """A map overwritten with zeros of the right size decodes fine: only its recorded content gives it away."""
    _set_params(stage_dir, backend="classical")
    masks = stage_dir / "data" / "masks" / "derain"
    sam_masks.main(["--task", "derain"])
    good = {p: p.read_bytes() for p in masks.rglob("*.png")}
    target = masks / "train" / "train2.png"
    write_image(target, np.zeros(read_label_map(target).shape, np.uint16))
    capsys.readouterr()
    sam_masks.main(["--task", "derain"])
    assert {p: p.read_bytes() for p in masks.rglob("*.png")} == good
    assert json.loads((stage_dir / "data" / "logs" / "sam_masks" / "derain.json").read_text())["written"] == 1
    err = capsys.readouterr().err
    assert "1 label map(s)" in err and "train2.png" in err
    assert not list(masks.rglob("maps.*.jsonl")) and (masks / "train" / "maps.json").is_file()


def test_a_truncated_settings_file_is_one_note_and_rebuilt(stage_dir, capsys):
    _set_params(stage_dir, backend="classical")
    masks = stage_dir / "data" / "masks" / "derain"
    sam_masks.main(["--task", "derain"])
    good = {p: p.read_bytes() for p in masks.rglob("*.png")}
    settings = (masks / "settings.json").read_text()
    (masks / "settings.json").write_text(settings[: len(settings) // 2])
    (masks / "train" / "maps.json").write_text("{\"train0.png\": {")
    capsys.readouterr()
    sam_masks.main(["--task", "derain"])
    err = capsys.readouterr().err
    assert "settings.json: unreadable (JSONDecodeError" in err and "maps.json: unreadable" in err
    assert (masks / "settings.json").read_text() == settings
    assert {p: p.read_bytes() for p in masks.rglob("*.png")} == good


def test_full_disk_during_extraction_is_one_line_and_a_rerun_completes(stage_dir, monkeypatch):
    _set_params(stage_dir, backend="classical")
    masks = stage_dir / "data" / "masks" / "derain"
    sam_masks.main(["--task", "derain"])
    good = {p: p.read_bytes() for p in masks.rglob("*.png")}
    shutil.rmtree(masks)
    with monkeypatch.context() as patch:
        full_disk(patch, 3000)  # settings.json and a map or two fit, then the disk is full
        with pytest.raises(Sam4irError) as err:
            sam_masks.main(["--task", "derain"])
    assert "\n" not in str(err.value) and "cannot write (No space left on device)" in str(err.value)
    assert all(p.read_bytes() == good[p] for p in masks.rglob("*.png"))  # what exists is whole
    sam_masks.main(["--task", "derain"])
    assert {p: p.read_bytes() for p in masks.rglob("*.png")} == good


def test_stage_bad_params_are_one_line(stage_dir):
    _set_params(stage_dir, source="clean")
    with pytest.raises(Sam4irError, match="sam.source"):
        sam_masks.main(["--task", "derain"])
    _set_params(stage_dir, source="degraded", generator={"points_per_side": "many"})
    with pytest.raises(Sam4irError, match="sam.generator.points_per_side"):
        sam_masks.main(["--task", "derain"])
    with pytest.raises(Sam4irError, match="--shard"):
        sam_masks.main(["--task", "derain", "--shard", "2/2"])


def test_stage_cli_missing_checkpoint_exits_1_with_one_line(stage_dir):
    _set_params(stage_dir, checkpoint="data/sam/sam_vit_b_01ec64.pth")
    env = {**os.environ, "PYTHONPATH": str(Path(sam4ir.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-m", "sam4ir.stages.sam_masks", "--task", "derain"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data/sam/sam_vit_b_01ec64.pth" in lines[0] and "sam.download is false" in lines[0]


# --- prior-information controls --------------------------------------------------------------------------------

def _write_regions(root: Path) -> dict[str, np.ndarray]:
    """Exact segment maps beside the stage's pairs (as the scenes demo writes them): image i gets i+2 bands."""
    truths = {}
    for image in sorted((root / "data" / "prepared" / "derain").glob("*/input/*.png")):
        bands = (np.arange(32) * (2 + int(image.stem[-1])) // 32 + 1).astype(np.uint16)
        truths[f"{image.parent.parent.name}/{image.name}"] = np.broadcast_to(bands[:, None], (32, 40)).copy()
        write_image(image.parent.parent / "regions" / image.name, truths[f"{image.parent.parent.name}/{image.name}"])
    return truths


def _maps(root: Path, task: str = "derain") -> dict[str, np.ndarray]:
    masks = root / "data" / "masks" / task
    return {f"{p.parent.name}/{p.name}": read_label_map(p) for p in sorted(masks.glob("*/*.png"))}


def test_stage_none_and_oracle_controls(stage_dir):
    truths = _write_regions(stage_dir)
    _set_params(stage_dir, backend="none")
    sam_masks.main(["--task", "derain"])
    assert all(not m.any() and m.shape == (32, 40) for m in _maps(stage_dir).values()) and len(_maps(stage_dir)) == 5
    _set_params(stage_dir, backend="oracle")
    sam_masks.main(["--task", "derain"])
    maps = _maps(stage_dir)
    assert maps.keys() == truths.keys() and all(np.array_equal(maps[k], truths[k]) for k in truths)
    # new exact maps under the same names are new settings: recomputed, never kept
    (stage_dir / "data" / "prepared" / "derain" / "test" / "regions" / "test0.png").unlink()
    with pytest.raises(Sam4irError, match="test0.png: no exact segment map.*data.source: scenes"):
        sam_masks.main(["--task", "derain"])


def test_stage_shuffled_gives_each_image_another_images_map(stage_dir):
    truths = _write_regions(stage_dir)
    _set_params(stage_dir, backend="shuffled", shuffle_from="oracle", shuffle_seed=3)
    sam_masks.main(["--task", "derain"])
    maps = _maps(stage_dir)
    for split, n in (("train", 3), ("test", 2)):
        mine = [f"{split}/{split}{i}.png" for i in range(n)]
        partners = [next(k for k in mine if np.array_equal(truths[k], maps[name])) for name in mine]
        assert sorted(partners) == mine and all(p != name for p, name in zip(partners, mine))  # a derangement
    first = maps
    _set_params(stage_dir, shuffle_seed=4)
    sam_masks.main(["--task", "derain"])
    _set_params(stage_dir, shuffle_seed=3)
    sam_masks.main(["--task", "derain"])
    assert all(np.array_equal(first[k], m) for k, m in _maps(stage_dir).items())  # a function of the seed
    summary = json.loads((stage_dir / "data" / "masks" / "derain" / "summary.json").read_text())
    assert summary["backend"] == "shuffled" and summary["shuffle_from"] == "oracle" and summary["complete"]


def test_shuffled_resizes_other_images_maps_and_classical_base(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "b.png"]
    write_image(paths[0], _photo((40, 32)))
    write_image(paths[1], _photo((24, 36), "coffee"))
    seg = ClassicalSegmenter("felzenszwalb", scale=100, sigma=0.8, min_size=20)
    shuffled = ShuffledRegions(seg, paths, seed=0)
    images = [read_image(p) for p in paths]
    maps = shuffled(paths, images)
    assert [m.shape for m in maps] == [(32, 40), (36, 24)] and all(m.dtype == np.uint16 for m in maps)
    other = seg([images[1]])[0]
    assert np.array_equal(maps[0], cv2.resize(other, (40, 32), interpolation=cv2.INTER_NEAREST))
    assert derangement(paths, 0) == {paths[0]: paths[1], paths[1]: paths[0]}


# --- sub-images: SAM once per source image ---------------------------------------------------------------------

ONE_SAMPLE = {**RELAXED, "points_per_side": 2}  # few masks: post-processing at 1200x900 stays well under a second


@pytest.fixture
def sidd_stage(tmp_path, tiny_ckpt, monkeypatch):
    """Three SIDD-shaped (1200x900) training pairs prepared into 27 sub-images, two small test pairs; the tiny SAM."""
    from test_subimages import prepare_folder, write_sidd_folder

    write_sidd_folder(tmp_path / "data" / "real" / "denoise")
    prepare_folder(tmp_path, monkeypatch)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["sam"].update(backend="sam", source="degraded", model_type="vit_b", checkpoint=str(tiny_ckpt),
                         download=False, device="cpu", amp="none", batch_size=1)
    params["sam"]["generator"].update(ONE_SAMPLE)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def _recording_sam(monkeypatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """(image, label map) of every image SamSegmenter segments from now on."""
    seen, call = [], SamSegmenter.__call__

    def record(self, images):
        maps = call(self, images)
        seen.extend(zip(images, maps))
        return maps
    monkeypatch.setattr(SamSegmenter, "__call__", record)
    return seen


def _run_log(root: Path, task: str = "denoise") -> dict:
    return json.loads((root / "data" / "logs" / "sam_masks" / f"{task}.json").read_text())


def test_sam_segments_each_source_once_and_crops_its_map(sidd_stage, monkeypatch, capsys):
    seen = _recording_sam(monkeypatch)
    sam_masks.main(["--task", "denoise"])
    real, masks = sidd_stage / "data" / "real" / "denoise", sidd_stage / "data" / "masks" / "denoise"
    assert sorted(image.shape[:2] for image, _ in seen) == [(96, 128)] * 2 + [(900, 1200)] * 3  # not 27 crops
    log = _run_log(sidd_stage)
    assert log == {**log, "segmented": 5, "written": 29, "skipped": 0}
    assert "segmented 5 source images and wrote 29 maps" in capsys.readouterr().out
    summary = json.loads((masks / "summary.json").read_text())
    assert summary["splits"]["train"] == {**summary["splits"]["train"], "images": 27, "sources": 3, "label_maps": 27}
    assert summary["complete"]

    windows_of = read_windows(sidd_stage / "data" / "prepared" / "denoise")
    for i in range(3):
        source = read_image(real / "train" / "input" / f"scene{i}.png")
        full = next(labels for image, labels in seen if np.array_equal(image, source))  # SAM saw the whole source
        assert full.max() > 1
        crops = {n: w for n, (src, w) in windows_of.items() if src == f"scene{i}"}
        assert len(crops) == 9
        for name, (y, x, h, w) in crops.items():  # ids kept: a segment cut by a window keeps its id
            assert np.array_equal(read_label_map(masks / "train" / f"{name}.png"), full[y:y + h, x:x + w])

    (masks / "train" / "scene1_y0384_x0688.png").unlink()  # resume: only that source is segmented again
    seen.clear()
    sam_masks.main(["--task", "denoise"])
    assert [image.shape[:2] for image, _ in seen] == [(900, 1200)]
    assert _run_log(sidd_stage) == {**_run_log(sidd_stage), "segmented": 1, "written": 9, "skipped": 20}


def test_shards_split_source_images(sidd_stage, monkeypatch):
    seen = _recording_sam(monkeypatch)
    sam_masks.main(["--task", "denoise", "--shard", "0/2"])  # train sources 0 and 2, test image 0
    assert sorted(image.shape[:2] for image, _ in seen) == [(96, 128), (900, 1200), (900, 1200)]
    names = sorted(p.stem for p in (sidd_stage / "data" / "masks" / "denoise" / "train").glob("*.png"))
    assert {n.split("_")[0] for n in names} == {"scene0", "scene2"} and len(names) == 18


def _source_maps(root: Path) -> dict[str, np.ndarray]:
    """Each training source's map rebuilt from its sub-images' maps."""
    maps, sources = _maps(root, "denoise"), {}
    for name, (source, (y, x, h, w)) in read_windows(root / "data" / "prepared" / "denoise").items():
        sources.setdefault(source, np.zeros((900, 1200), np.uint16))[y:y + h, x:x + w] = maps[f"train/{name}.png"]
    return sources


def test_controls_on_subimages(sidd_stage, monkeypatch):
    _set_params(sidd_stage, backend="none")
    sam_masks.main(["--task", "denoise"])
    maps = _maps(sidd_stage, "denoise")
    assert len(maps) == 29 and all(not m.any() for m in maps.values())
    _set_params(sidd_stage, backend="shuffled", shuffle_from="sam", shuffle_seed=0)
    seen = _recording_sam(monkeypatch)
    sam_masks.main(["--task", "denoise"])
    assert _run_log(sidd_stage)["segmented"] == 5 and len(seen) == 5
    real = sidd_stage / "data" / "real" / "denoise" / "train" / "input"
    own = {f"scene{i}": next(labels for image, labels in seen
                             if np.array_equal(image, read_image(real / f"scene{i}.png"))) for i in range(3)}
    shuffled = _source_maps(sidd_stage)
    partners = {s: next(o for o in own if np.array_equal(own[o], m)) for s, m in shuffled.items()}
    assert sorted(partners.values()) == sorted(own) and all(p != s for s, p in partners.items())  # a derangement
    _set_params(sidd_stage, backend="oracle")
    with pytest.raises(Sam4irError, match="no exact segment map.*data.source: scenes"):
        sam_masks.main(["--task", "denoise"])

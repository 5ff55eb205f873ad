"""The restore CLI (python -m sam4ir.restore) and the tiled inference it relies on."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import pytest
import skimage.data
import torch
from torch import nn

from sam4ir import models
from sam4ir.errors import Sam4irError
from sam4ir.inference import restore_image, restore_tensor, tile_spans
from sam4ir.io import read_image, write_image
from sam4ir.restore import MANIFEST, main
from sam4ir.stages import run_stage
from test_io import full_disk

TINY = {"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, "dec_blk_nums": [1, 1]}


def tiny_nafnet(seed: int = 0, **extra) -> nn.Module:
    torch.manual_seed(seed)
    return models.build("nafnet", **TINY, **extra).eval()


def photo(name: str, h: int, w: int) -> np.ndarray:
    return cv2.resize(getattr(skimage.data, name)(), (w, h), interpolation=cv2.INTER_AREA)


@pytest.fixture
def setup(tmp_path: Path) -> dict:
    """A saved tiny NAFNet and a folder with two real photos (png, bmp) and a non-image file."""
    ckpt = tmp_path / "model.pt"
    models.save_model(ckpt, tiny_nafnet(), "nafnet", TINY)
    src = tmp_path / "in"
    write_image(src / "a.png", photo("astronaut", 40, 56))
    src.mkdir(exist_ok=True)
    cv2.imwrite(str(src / "b.bmp"), cv2.cvtColor(photo("chelsea", 36, 44), cv2.COLOR_RGB2BGR))
    (src / "notes.txt").write_text("not an image")
    return {"ckpt": ckpt, "src": src, "out": tmp_path / "out", "net": models.load_model(ckpt)}


def run(setup: dict, *extra: str) -> None:
    main(["--checkpoint", str(setup["ckpt"]), "--input", str(setup["src"]), "--output", str(setup["out"]),
          "--device", "cpu", *extra])


def cli(setup: dict, capsys: pytest.CaptureFixture, *extra: str) -> tuple[int, str, list[str]]:
    """Run restore as ``python -m sam4ir.restore`` does (through run_stage), in process: exit status, stdout and
    the ``sam4ir:`` lines of stderr (the progress bar shares it)."""
    try:
        run_stage(lambda: run(setup, *extra))
        code = 0
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, [line for line in re.split(r"[\r\n]", err) if line.startswith("sam4ir:")]


def assert_restored(setup: dict, names: Sequence[str] = ("a.png", "b.bmp"), net: Optional[nn.Module] = None,
                    tile: Optional[int] = None, overlap: int = 32) -> None:
    """Each named input's output is what ``restore_image`` makes of it with ``net`` (default: the checkpoint's)."""
    for name in names:
        out = read_image(setup["out"] / f"{Path(name).stem}.png")
        np.testing.assert_array_equal(out, restore_image(net or setup["net"], read_image(setup["src"] / name),
                                                         torch.device("cpu"), tile, overlap))


def test_restores_every_image_of_a_folder_as_restore_image_does(setup):
    run(setup)
    assert sorted(p.name for p in setup["out"].iterdir()) == ["a.png", "b.png", MANIFEST]
    for name in ("a.png", "b.bmp"):
        img = read_image(setup["src"] / name)
        out = read_image(setup["out"] / f"{Path(name).stem}.png")
        assert out.shape == img.shape
        np.testing.assert_array_equal(out, restore_image(setup["net"], img, torch.device("cpu")))
        assert np.abs(out.astype(int) - img).mean() > 1  # a random net really changed the image


def test_existing_outputs_are_kept_unless_overwrite(setup):
    run(setup)
    marker = np.zeros((4, 4, 3), np.uint8)
    write_image(setup["out"] / "a.png", marker)
    run(setup)
    np.testing.assert_array_equal(read_image(setup["out"] / "a.png"), marker)
    run(setup, "--overwrite")
    assert read_image(setup["out"] / "a.png").shape == (40, 56, 3)


@pytest.mark.parametrize("change", ["checkpoint retrained in place", "tiling", "no manifest", "garbled manifest"])
def test_outputs_the_manifest_does_not_vouch_for_are_restored_again(setup, change):
    run(setup)
    write_image(setup["out"] / "a.png", np.zeros((4, 4, 3), np.uint8))  # would be kept, as the test above shows
    net, tile, extra = setup["net"], None, []
    if change == "checkpoint retrained in place":  # same path, other weights: only the sha256 tells
        net = tiny_nafnet(seed=1)
        models.save_model(setup["ckpt"], net, "nafnet", TINY)
    elif change == "tiling":
        tile, extra = 32, ["--tile", "32", "--overlap", "16"]
    elif change == "no manifest":  # e.g. outputs from before there was one
        (setup["out"] / MANIFEST).unlink()
    else:
        (setup["out"] / MANIFEST).write_text('{"made_by": ')
    run(setup, *extra)
    assert_restored(setup, net=net, tile=tile, overlap=16)


def test_outputs_cut_by_a_crash_are_restored_again(setup):
    run(setup)
    cut = setup["out"] / "a.png"
    cut.write_bytes(cut.read_bytes()[:200])
    (setup["out"] / "b.png").write_bytes(b"")
    run(setup)
    assert_restored(setup)


def test_bad_inputs_are_reported_and_skipped_and_a_rerun_retries_them(setup, capsys):
    src = setup["src"]
    good = (src / "a.png").read_bytes()
    bad = [src / "c.png", src / "d.jpg", src / "e.tif"]
    bad[0].write_bytes(good[:len(good) // 2])
    bad[1].write_bytes(b"not an image at all")
    bad[2].write_bytes(b"")
    code, _, lines = cli(setup, capsys)
    assert code == 1
    assert len(lines) == 4 and "truncated PNG" in lines[0]
    for line, path in zip(lines, bad):
        assert line.startswith(f"sam4ir: error: {path}: cannot decode image (")
    assert lines[3].startswith(f"sam4ir: error: 3 of 5 inputs failed: {bad[0]}, {bad[1]}, {bad[2]} ")
    assert_restored(setup)
    assert sorted(p.name for p in setup["out"].iterdir()) == ["a.png", "b.png", MANIFEST]

    write_image(bad[0], photo("coffee", 24, 32))  # fixed; the others still fail
    code, out, lines = cli(setup, capsys)
    assert code == 1 and lines[-1].startswith(f"sam4ir: error: 2 of 5 inputs failed: {bad[1]}, {bad[2]} ")
    assert "restored 1 image(s)" in out and "2 already there, kept" in out
    assert_restored(setup, ["a.png", "b.bmp", "c.png"])


def test_a_full_disk_ends_the_run_with_one_line_and_a_rerun_completes(setup, monkeypatch, capsys):
    full_disk(monkeypatch, 1000)  # room for the manifest, not for a.png
    code, _, lines = cli(setup, capsys)
    assert code == 1
    assert lines == [f"sam4ir: error: {setup['out'] / 'a.png'}: cannot write (No space left on device)"]
    assert [p.name for p in setup["out"].iterdir()] == [MANIFEST]  # b.png not tried, no half-written file
    monkeypatch.undo()
    assert cli(setup, capsys)[0] == 0
    assert_restored(setup)


def test_a_read_only_output_folder_is_one_line_before_any_restoring(setup, monkeypatch, capsys):
    out = setup["out"]
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root ignores the mode: refuse new files in it as the kernel does for anyone else
        real_open = os.open

        def refusing_open(path, flags: int, *args, **kwargs) -> int:
            if flags & os.O_CREAT and Path(path).parent == out:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
            return real_open(path, flags, *args, **kwargs)

        monkeypatch.setattr(os, "open", refusing_open)
    code, _, lines = cli(setup, capsys)
    monkeypatch.undo()
    out.chmod(0o755)
    assert code == 1 and lines == [f"sam4ir: error: {out / MANIFEST}: cannot write (Permission denied)"]
    assert not list(out.iterdir())
    assert cli(setup, capsys)[0] == 0
    assert_restored(setup)


def test_a_single_image_input(setup):
    main(["--checkpoint", str(setup["ckpt"]), "--input", str(setup["src"] / "b.bmp"), "--output", str(setup["out"])])
    assert sorted(p.name for p in setup["out"].iterdir()) == ["b.png", MANIFEST]


def test_refuses_to_write_into_the_input_folder(setup):
    before = {p.name: p.read_bytes() for p in setup["src"].iterdir()}
    for target in (str(setup["src"]), f"{setup['src']}/.", f"{setup['src']}/../in"):
        with pytest.raises(Sam4irError, match="input folder"):
            main(["--checkpoint", str(setup["ckpt"]), "--input", str(setup["src"]), "--output", target])
    with pytest.raises(Sam4irError, match="input folder"):  # a single file's folder counts as the input folder
        main(["--checkpoint", str(setup["ckpt"]), "--input", str(setup["src"] / "a.png"),
              "--output", str(setup["src"])])
    assert {p.name: p.read_bytes() for p in setup["src"].iterdir()} == before


def test_official_checkpoint_with_model_and_model_args(setup, tmp_path):
    official = tmp_path / "NAFNet-official.pth"
    torch.save({"params": tiny_nafnet(seed=1).state_dict()}, official)  # BasicSR layout, no sam4ir metadata
    with pytest.raises(Sam4irError, match="--model"):
        main(["--checkpoint", str(official), "--input", str(setup["src"]), "--output", str(setup["out"])])
    main(["--checkpoint", str(official), "--input", str(setup["src"]), "--output", str(setup["out"]),
          "--model", "nafnet", "--model-args", '{"width": 8, "enc_blk_nums": [1, 1], "middle_blk_num": 1, '
                                               '"dec_blk_nums": [1, 1]}'])
    img = read_image(setup["src"] / "a.png")
    np.testing.assert_array_equal(read_image(setup["out"] / "a.png"),
                                  restore_image(tiny_nafnet(seed=1), img, torch.device("cpu")))


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_checkpoint_is_named_as_such_not_as_an_official_one(setup, damage):
    """A cut download or a stray file is not an official release: no --model hint, the file named."""
    data = setup["ckpt"].read_bytes()
    setup["ckpt"].write_bytes(data[:len(data) // 2] if damage == "truncated" else b"<html>not found</html>")
    with pytest.raises(Sam4irError) as err:
        run(setup)
    message = str(err.value)
    assert "\n" not in message and "--model" not in message
    assert message.startswith(f"{setup['ckpt']}: not a readable torch checkpoint: truncated, or not a checkpoint")
    assert not setup["out"].exists()


@pytest.mark.parametrize("extra, message", [
    (["--model", "nafnet", "--model-args", "{width: 8}"], "--model-args: not valid JSON"),
    (["--model", "nafnet", "--model-args", '{"width": 16}'], "shape mismatch"),
    (["--model-args", '{"width": 8}'], "without --model"),
    (["--tile", "32", "--overlap", "32"], "overlap"),
])
def test_bad_arguments_are_one_line_errors(setup, extra, message):
    with pytest.raises(Sam4irError, match=message) as err:
        run(setup, *extra)
    assert "\n" not in str(err.value)
    assert not setup["out"].exists()


def test_ir2_checkpoint_is_refused_before_any_output(setup, tmp_path):
    ir2 = tmp_path / "ir2.pt"
    models.save_model(ir2, tiny_nafnet(extra_in_channels=3), "nafnet", {**TINY, "extra_in_channels": 3})
    with pytest.raises(Sam4irError, match="does not take an RGB image"):
        main(["--checkpoint", str(ir2), "--input", str(setup["src"]), "--output", str(setup["out"])])
    assert not setup["out"].exists()


def test_missing_checkpoint_is_a_one_line_error_and_exit_1(setup, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "sam4ir.restore", "--checkpoint", str(tmp_path / "nope.pt"),
                           "--input", str(setup["src"]), "--output", str(setup["out"])],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "nope.pt: checkpoint file not found" in proc.stderr
    assert not setup["out"].exists()


@pytest.mark.parametrize("size, tile, overlap", [(16, 16, 4), (17, 16, 4), (100, 16, 4), (101, 20, 7), (5, 8, 0)])
def test_tile_spans_cover_the_axis_and_keep_pixels_away_from_cuts(size, tile, overlap):
    spans = tile_spans(size, tile, overlap)
    assert spans[0][1] == 0 and spans[-1][2] == size
    assert all(a[2] == b[1] for a, b in zip(spans, spans[1:]))  # contiguous, no gap, no double write
    for i, (start, keep_from, keep_to) in enumerate(spans):
        assert 0 <= start and start + min(tile, size) <= size
        if i > 0:
            assert keep_from - start >= overlap // 2
        if i < len(spans) - 1:
            assert start + tile - keep_to >= overlap // 2


def local_net() -> nn.Module:
    """Three 3x3 convolutions: each output pixel sees 3 pixels around it, nothing further."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.GELU(), nn.Conv2d(8, 8, 3, padding=1), nn.GELU(),
                         nn.Conv2d(8, 3, 3, padding=1)).double()


@pytest.mark.parametrize("h, w, tile", [(37, 53, 16), (16, 50, 16), (45, 12, 20)])
def test_tiling_is_exact_for_a_net_whose_receptive_field_fits_in_half_the_overlap(h, w, tile):
    net = local_net()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    whole = restore_tensor(net, x)
    torch.testing.assert_close(restore_tensor(net, x, tile=tile, overlap=6), whole, rtol=0, atol=1e-12)
    assert (restore_tensor(net, x, tile=tile, overlap=2) - whole).abs().max() > 1e-3  # too little context shows


def test_nafnet_tiling_keeps_shape_and_stays_close_and_the_cli_passes_tile_and_overlap(setup):
    net = setup["net"]
    img = photo("coffee", 70, 90)
    whole = restore_image(net, img, torch.device("cpu"))
    tiled = restore_image(net, img, torch.device("cpu"), tile=32, overlap=16)
    assert tiled.shape == img.shape
    # Channel attention pools globally, so tiles see other statistics: close, not equal.
    assert 0 < np.abs(tiled.astype(int) - whole).mean() < 3
    write_image(setup["src"] / "c.png", img)
    run(setup, "--tile", "32", "--overlap", "16")
    np.testing.assert_array_equal(read_image(setup["out"] / "c.png"), tiled)

"""The schema of ``params.yaml``: every key, its type and its range, checked as a whole before a stage reads data.

Every stage validates the whole file first (``config.load_params``), so a typo or an out-of-range value anywhere
fails the first stage DVC runs, in seconds, with one line naming the key -- not after hours of SAM extraction or
training. Unknown keys are errors too: a misspelt key would otherwise be silently ignored. The stages still read
values from the plain mapping; this module only decides whether the mapping is acceptable.
"""

from __future__ import annotations

import inspect
import re
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, Optional, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from sam4ir.errors import Sam4irError

Task = Literal["derain", "deblur", "denoise"]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Count = Annotated[int, Field(ge=1)]
Size = Annotated[int, Field(ge=0)]


def _ordered(pair: list) -> list:
    if pair[0] > pair[1]:
        raise ValueError(f"range [{pair[0]}, {pair[1]}] has its low end above its high end")
    return pair


IntRange = Annotated[list[Count], Field(min_length=2, max_length=2), AfterValidator(_ordered)]
FractionRange = Annotated[list[Fraction], Field(min_length=2, max_length=2), AfterValidator(_ordered)]


class Section(BaseModel):
    """Strict: no unknown keys, no strings where numbers belong (YAML reads ``4e-3`` as a string)."""
    model_config = ConfigDict(extra="forbid", strict=True)


class Degradation(Section):
    noise_sigma: NonNegative
    blur_kernel: IntRange
    rain_opacity: FractionRange


class PhotoSplit(Section):
    """The offline sources: train and test images from disjoint scikit-image photos."""
    photos_train: list[str] = Field(min_length=1)
    photos_test: list[str] = Field(min_length=1)
    size: Annotated[int, Field(ge=16)]


class Scenes(PhotoSplit):
    scenes_train: Count
    scenes_val: Count
    scenes_test: Count
    shapes: IntRange
    flat_fraction: Fraction


class Demo(PhotoSplit):
    patches_per_photo: Count


class TaskSets(Section):
    train: str
    test: list[str] | str


class Download(Section):
    cache: str
    manifest: str
    mirror: Optional[str]
    derain: Optional[TaskSets] = None
    deblur: Optional[TaskSets] = None
    denoise: Optional[TaskSets] = None


def _inside_real(folders: dict[str, str]) -> dict[str, str]:
    """DVC tracks the content of ``data/real`` (a dependency of prepare_data): data elsewhere could change without
    DVC noticing, and results would silently stay stale."""
    for task, folder in folders.items():
        parts = PurePosixPath(folder).parts
        if parts[:2] != ("data", "real") or len(parts) < 3 or ".." in parts:
            raise ValueError(f"{task}: {folder!r} is not inside data/real/ (put or symlink the data there, so DVC "
                             "tracks its content)")
    return folders


class Subimages(Section):
    """BasicSR's extract_subimages windows: crop_size, step, thresh_size."""
    crop: Count
    step: Count
    thresh_size: Size

    @model_validator(mode="after")
    def _windows_cover(self) -> "Subimages":
        if self.step > self.crop:
            raise ValueError(f"step {self.step} is above crop {self.crop}: the windows would leave gaps (SAM segments "
                             "each source image rebuilt from its sub-images)")
        return self


def _training_sets(specs: dict[str, Optional[Subimages]]) -> dict[str, Optional[Subimages]]:
    from sam4ir.datasets.registry import DATASETS  # imported only when params are checked

    for name in specs:
        if name not in DATASETS and name not in get_args(Task):
            raise ValueError(f"{name!r} is neither a dataset of data.download ({', '.join(DATASETS)}) nor a task "
                             "(the folder source)")
    return specs


class Data(Section):
    source: Literal["scenes", "demo", "folder", "download"]
    seed: Size
    val_pairs: Count
    degradation: Degradation
    scenes: Scenes
    demo: Demo
    folder: Annotated[dict[Task, str], AfterValidator(_inside_real)]
    download: Download
    # training set (download) or task (folder) -> its sub-images; null or absent: whole images
    subimages: Annotated[dict[str, Optional[Subimages]], AfterValidator(_training_sets)] = {}


class Generator(Section):
    """SamAutomaticMaskGenerator's arguments."""
    points_per_side: Optional[Count]
    points_per_batch: Count
    pred_iou_thresh: Fraction
    stability_score_thresh: Fraction
    stability_score_offset: NonNegative
    box_nms_thresh: Fraction
    crop_n_layers: Size
    crop_nms_thresh: Fraction
    crop_overlap_ratio: Fraction
    crop_n_points_downscale_factor: Count
    min_mask_region_area: Size


class Classical(Section):
    method: Literal["felzenszwalb", "slic"]
    scale: Positive
    sigma: NonNegative
    min_size: Size
    n_segments: Count
    compactness: Positive


class Sam(Section):
    backend: Literal["sam", "classical", "oracle", "none", "shuffled"]
    shuffle_from: Literal["oracle", "classical", "sam"]
    shuffle_seed: Size
    source: Literal["degraded", "target"]
    model_type: Literal["vit_h", "vit_l", "vit_b"]
    checkpoint: str
    download: bool
    device: Device
    amp: Literal["none", "bf16", "fp16"]
    batch_size: Count
    generator: Generator
    classical: Classical


class ModelArgs(Section):
    """Each network's constructor arguments: a misspelt one would otherwise fail only when the network is built."""
    nafnet: Optional[dict[str, Any]] = None
    hinet: Optional[dict[str, Any]] = None
    restormer: Optional[dict[str, Any]] = None

    @field_validator("nafnet", "hinet", "restormer")
    @classmethod
    def _constructor_args(cls, kwargs: Optional[dict[str, Any]], info: ValidationInfo) -> Optional[dict[str, Any]]:
        from sam4ir.models import MODELS  # torch-heavy; imported only when params are checked

        accepted = inspect.signature(MODELS[info.field_name]).parameters
        unknown = [key for key in kwargs or {} if key not in accepted]
        if unknown:
            raise ValueError(f"{info.field_name} has no argument {unknown[0]!r}; it takes {', '.join(accepted)}")
        return kwargs


class Model(Section):
    name: Literal["nafnet", "hinet", "restormer"]
    args: ModelArgs

    @model_validator(mode="after")
    def _args_of_the_chosen_network(self) -> "Model":
        if getattr(self.args, self.name) is None:
            raise ValueError(f"model.args has no entry for model.name {self.name!r}")
        return self


class Train(Section):
    seed: Size
    iters: Count
    batch_size: Count
    crop: Annotated[int, Field(ge=8)]
    lr: Positive
    min_lr: NonNegative
    weight_decay: NonNegative
    betas: Annotated[list[Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]],
                     Field(min_length=2, max_length=2)]
    grad_clip: NonNegative
    loss: Literal["psnr", "l1"]
    cache_images: Literal["auto"] | bool  # auto: cache below sam4ir.data.paired.CACHE_LIMIT_BYTES
    augment: bool
    val_every: Count
    log_every: Count
    ckpt_every: Count
    num_workers: Size
    amp: Literal["none", "bf16"]
    device: Device

    @field_validator("min_lr")
    @classmethod
    def _min_lr_below_lr(cls, min_lr: float, info: ValidationInfo) -> float:
        if "lr" in info.data and min_lr > info.data["lr"]:
            raise ValueError(f"the cosine schedule's end is above train.lr = {info.data['lr']}")
        return min_lr


class Spf(Section):
    prior: Literal["mean", "boundary", "both", "mean_std"]
    detach_input: bool
    ir2_init: Literal["identity", "copy"]
    iters: Count
    lr: Positive


class Distill(Section):
    teacher: Literal["frozen", "joint"]
    teacher_input: Literal["student", "baseline"]
    init: Literal["baseline", "scratch"]
    iters: Count
    lr: Positive
    spd_weight: NonNegative
    sgr_weight: NonNegative
    recon2_weight: NonNegative
    spd_loss: Literal["l1", "l2"]
    analyzer: Literal["ir_features", "images", "vgg19"]
    sgr_min_pixels: Count
    sgr_max_regions: Count


class Eval(Section):
    crop_border: Size
    test_y_channel: dict[Task, bool]
    save_images: Size
    segmentation_check: bool


class Report(Section):
    latency_runs: Size  # 0: no latency measured (a byte-stable report)
    latency_size: Annotated[int, Field(ge=16)]


def _unique(tasks: list[str]) -> list[str]:
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"{tasks} lists a task twice")
    return tasks


class Params(Section):
    tasks: Annotated[list[Task], Field(min_length=1), AfterValidator(_unique)]
    data: Data
    sam: Sam
    model: Model
    train: Train
    spf: Spf
    distill: Distill
    eval: Eval
    report: Report


def check_params(tree: dict, where: str) -> None:
    """One-line ``Sam4irError`` naming the first offending key of ``tree`` (read from ``where``), if any."""
    try:
        Params.model_validate(tree)
    except ValidationError as err:
        raise Sam4irError(_first_error(err, where)) from None


def _first_error(err: ValidationError, where: str) -> str:
    first = err.errors(include_url=False)[0]
    key = ".".join(str(part) for part in first["loc"] if not re.fullmatch(r"function-after\[.*\]", str(part)))
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    if first["type"] == "missing":
        return f"{where}: missing param '{key}'{more}"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown param '{key}' (misspelt? see the README's params){more}"
    value = repr(first["input"])
    value = value if len(value) <= 60 else value[:57] + "..."
    return f"{where}: param '{key}' = {value}: {message}{more}"

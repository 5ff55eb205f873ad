"""The schema of ``params.yaml``: every key, its type and its range -- and the typed, frozen object stages read.

Every stage loads the whole file once (``config.load_params``) into :class:`Params`, so a typo or an out-of-range
value anywhere fails the first stage DVC runs, in seconds, with one line naming the key -- not after hours of SAM
extraction or training. Unknown keys are errors too: a misspelt key would otherwise be silently ignored. Stages then
read attributes (``params.distill.sgr_weight``) and hand each library component the section it needs.

The allowed names come from the library's registries (``MODELS``, ``PRIOR_CHANNELS``, ``ANALYZERS``, ...): one
place for each list, so the schema and the code cannot drift. Numbers keep the type they were written with (an
``int`` stays an ``int``): they are recorded in outputs (``settings.json``), which must not change with the reader.

:func:`start_trace` records which keys a process reads; the pipeline test compares that with what ``dvc.yaml``
declares for each stage.
"""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
from contextlib import contextmanager
from pathlib import PurePosixPath
from typing import Annotated, Any, Iterable, Iterator, Literal, Optional, get_args

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PlainValidator, PrivateAttr, ValidationError,
                      ValidationInfo, create_model, field_validator, model_validator)

from sam4ir.data import SOURCES, TASKS
from sam4ir.errors import Sam4irError
from sam4ir.training.losses import RECON_LOSSES
from sam4ir.method.analyzer import ANALYZERS
from sam4ir.method.objectives import INITS, TEACHER_INPUTS, TEACHERS
from sam4ir.method.spd import SPD_LOSSES
from sam4ir.method.spf import IR2_INITS, PRIOR_CHANNELS
from sam4ir.models import MODELS, NetworkError, check_imported, is_import_path, locate, no_feature_layer
from sam4ir.sam.names import BACKENDS, CLASSICAL_METHODS, IMAGE_BACKENDS, SAM_AMP, SAM_MODEL_TYPES, SOURCE_DIRS
from sam4ir.training.fit import AMP_MODES


def one_of(names: Iterable[str]) -> Any:
    """``Literal`` of a registry's names."""
    return Literal[tuple(names)]


def _number(low: float | None = None, high: float | None = None, *, above: bool = False) -> Any:
    """A finite int or float within bounds, kept as written (strict: no bool, no string)."""
    def check(value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("Input should be a valid number")
        if not math.isfinite(value):
            raise ValueError("Input should be a finite number")
        if low is not None and (value <= low if above else value < low):
            raise ValueError(f"Input should be greater than {'' if above else 'or equal to '}{low}")
        if high is not None and value > high:
            raise ValueError(f"Input should be less than or equal to {high}")
        return value
    return Annotated[float, PlainValidator(check)]


Task = one_of(TASKS)
Device = Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")]
Positive = _number(0, above=True)
NonNegative = _number(0)
Fraction = _number(0, 1)
Count = Annotated[int, Field(ge=1)]
Size = Annotated[int, Field(ge=0)]


def _ordered(pair: list) -> list:
    if pair[0] > pair[1]:
        raise ValueError(f"range [{pair[0]}, {pair[1]}] has its low end above its high end")
    return pair


IntRange = Annotated[list[Count], Field(min_length=2, max_length=2), AfterValidator(_ordered)]
FractionRange = Annotated[list[Fraction], Field(min_length=2, max_length=2), AfterValidator(_ordered)]


_reads: Optional[set[str]] = None  # the keys read while a trace is on


def start_trace() -> set[str]:
    """From now on record the dotted keys read from any :class:`Params` (leaves, or whole sections that were
    dumped) in the returned set (the same set until :func:`stop_trace`)."""
    global _reads
    if _reads is None:
        _reads = set()
    return _reads


def stop_trace() -> None:
    global _reads
    _reads = None


class Section(BaseModel):
    """Strict: no unknown keys, no strings where numbers belong (YAML reads ``4e-3`` as a string). Frozen: a stage
    cannot change what it was given. ``_key``: the dotted path of this section in params.yaml (for the trace)."""
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
    _key: Optional[str] = PrivateAttr(default=None)  # None while validating: the validators' reads are not a stage's

    def __getattribute__(self, name: str) -> Any:
        value = super().__getattribute__(name)
        if (_reads is not None and name in type(self).model_fields and not isinstance(value, Section)
                and self._key is not None):
            _reads.add(f"{self._key}.{name}".lstrip("."))
        return value

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """The section as a mapping (a read of all of it)."""
        if _reads is not None and self._key is not None:
            _reads.add(self._key)
        return super().model_dump(**kwargs)

    def _set_keys(self, key: str) -> None:
        self._key = key
        for name in type(self).model_fields:
            child = super().__getattribute__(name)
            if isinstance(child, Section):
                child._set_keys(f"{key}.{name}".lstrip("."))


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
    source: one_of(SOURCES)
    seed: Size
    max_pixels: Count  # the decode limit of every image read (sam4ir.io.limit_pixels)
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
    method: one_of(CLASSICAL_METHODS)
    scale: Positive
    sigma: NonNegative
    min_size: Size
    n_segments: Count
    compactness: Positive


class Sam(Section):
    backend: one_of(BACKENDS)
    shuffle_from: one_of(("oracle", *IMAGE_BACKENDS))
    shuffle_seed: Size
    source: one_of(SOURCE_DIRS)
    model_type: one_of(SAM_MODEL_TYPES)
    checkpoint: str
    download: bool
    device: Device
    amp: one_of(SAM_AMP)
    batch_size: Count
    generator: Generator
    classical: Classical


def _constructor_args(name: str, kwargs: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """A misspelt constructor argument would otherwise fail only when the network is built."""
    accepted = inspect.signature(MODELS[name]).parameters
    unknown = [key for key in kwargs or {} if key not in accepted]
    if unknown:
        raise ValueError(f"{name} has no argument {unknown[0]!r}; it takes {', '.join(accepted)}")
    return kwargs


class ParamError(ValueError):
    """A problem a check across keys found, reported under the key it concerns rather than the checked section."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(problem)
        self.key = key


@contextmanager
def _keyed() -> Iterator[None]:
    """The library's network errors as ParamErrors: reported under the param they name."""
    try:
        yield
    except NetworkError as err:
        raise ParamError(err.key, err.problem) from None


def _nested(path: str) -> str:
    """How ``model.args.<path>`` is written in YAML: nested by the path's dots, e.g. ``a: {b:C: {...}}``."""
    *outer, last = path.split(".")
    return "".join(f"{part}: {{" for part in outer) + f"{last}: {{...}}" + "}" * len(outer)


class NetworkArgs(Section):
    """Besides one optional entry per name of MODELS: imported networks' arguments, nested by their import paths'
    dots (DVC splits params keys on dots: ``dvc exp run -S model.args.<path>.<arg>=...`` must find them)."""
    model_config = ConfigDict(extra="allow")

    def check_packages(self) -> None:
        """ParamError for an extra key that cannot start an import path (a misspelt network name, say)."""
        for key in self.__pydantic_extra__ or {}:
            if not isinstance(key, str) or not key.isidentifier():
                hint = f" (write it nested: {_nested(key)})" if isinstance(key, str) and "." in key else ""
                raise ParamError(f"model.args.{key}", f"not a package name: DVC reads a params key's dots as "
                                                      f"nesting{hint}")
            if importlib.util.find_spec(key) is None:
                raise ParamError(f"model.args.{key}", f"neither a network of sam4ir ({', '.join(MODELS)}) nor an "
                                                      "importable package (the first part of an import path)")

    def entry(self, path: str) -> Any:
        """What is written at the dotted key ``path`` among the imported networks' arguments (None: nothing)."""
        node: Any = self.__pydantic_extra__ or {}
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node


# Each network's constructor arguments: one optional entry per name of MODELS, and any import paths'.
ModelArgs = create_model(
    "ModelArgs", __base__=NetworkArgs,
    __validators__={"constructor_args": field_validator(*MODELS)(
        classmethod(lambda cls, kwargs, info: _constructor_args(info.field_name, kwargs)))},
    **{name: (Optional[dict[str, Any]], None) for name in MODELS})


def _network_name(name: str) -> str:
    if name not in MODELS and not is_import_path(name):
        raise ValueError(f"neither a network of sam4ir ({', '.join(MODELS)}) nor an import path "
                         "(package.module:ClassName)")
    return name


class Model(Section):
    """``name``: a key of MODELS or an import path; ``args.<name>`` its constructor arguments; ``feature_layer``:
    a plain nn.Module's submodule whose output SPD/SGR compare (null: the wrapper's default)."""
    name: Annotated[str, AfterValidator(_network_name)]
    args: ModelArgs
    feature_layer: Optional[str] = None

    @model_validator(mode="after")
    def _args_of_the_chosen_network(self) -> "Model":
        builtin = self.name in MODELS
        if builtin and getattr(self.args, self.name) is None:
            raise ValueError(f"model.args has no entry for model.name {self.name!r}")
        with _keyed():
            if builtin:
                no_feature_layer(self.name, self.feature_layer)
            else:
                locate(self.name)  # first: a network that cannot be imported is the problem to report
            self.args.check_packages()
            if not builtin:  # built on the meta device: a problem shows now, not after SAM's masks
                check_imported(self.name, self.feature_layer, self._imported_args())
        return self

    def _imported_args(self) -> dict[str, Any]:
        kwargs = self.args.entry(self.name)
        if not isinstance(kwargs, dict):
            raise ParamError(f"model.args.{self.name}", f"no mapping of constructor arguments at this key (nested by "
                                                        f"model.name's dots: {_nested(self.name)}; {{}} for none)")
        return kwargs

    def args_for(self, name: str) -> dict[str, Any]:
        """Network ``name``'s constructor arguments (a copy: the caller may add to it)."""
        if name in MODELS:
            return dict(getattr(self.args, name) or {})
        if _reads is not None and self._key is not None:  # an extra key: not a field, so recorded here
            _reads.add(f"{self._key}.args.{name}")
        return dict(self.args.entry(name) or {})

    @property
    def kwargs(self) -> dict[str, Any]:
        """The chosen network's constructor arguments."""
        return self.args_for(self.name)


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
    loss: one_of(RECON_LOSSES)
    cache_images: Literal["auto"] | bool  # auto: cache below sam4ir.data.paired.CACHE_LIMIT_BYTES
    augment: bool
    val_every: Count
    log_every: Count
    ckpt_every: Count
    num_workers: Size
    amp: one_of(AMP_MODES)
    device: Device
    deterministic: bool

    @field_validator("min_lr")
    @classmethod
    def _min_lr_below_lr(cls, min_lr: float, info: ValidationInfo) -> float:
        if "lr" in info.data and min_lr > info.data["lr"]:
            raise ValueError(f"the cosine schedule's end is above train.lr = {info.data['lr']}")
        return min_lr


class Spf(Section):
    prior: one_of(PRIOR_CHANNELS)
    detach_input: bool
    ir2_init: one_of(IR2_INITS)
    iters: Count
    lr: Positive


class Distill(Section):
    teacher: one_of(TEACHERS)
    teacher_input: one_of(TEACHER_INPUTS)
    init: one_of(INITS)
    iters: Count
    lr: Positive
    spd_weight: NonNegative
    sgr_weight: NonNegative
    recon2_weight: NonNegative
    spd_loss: one_of(SPD_LOSSES)
    analyzer: one_of(ANALYZERS)
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
    parallel_tasks: Literal["auto"] | Count  # sam4ir.stages.shared.tasks
    data: Data
    sam: Sam
    model: Model
    train: Train
    spf: Spf
    distill: Distill
    eval: Eval
    report: Report
    _where: str = PrivateAttr(default="params.yaml")

    @model_validator(mode="after")
    def _offline_images_fit(self) -> "Params":
        """The offline sources' image side is a param: a training crop or an evaluation border that cannot fit
        it would otherwise fail only after data, masks and training (folder and downloaded data are checked when
        prepared: sam4ir.stages.prepare_data)."""
        if self.data.source in ("scenes", "demo"):
            size = getattr(self.data, self.data.source).size
            check_image_sizes(self, train_side=size, test_side=size, what=f"data.{self.data.source}.size = {size}")
        return self

    @property
    def where(self) -> str:
        """The file these params were read from: error messages name it."""
        return self._where

    def snapshot(self) -> dict[str, Any]:
        """Every value as a mapping, not counted as a read: what a resume state's identity hashes (any change of
        the params starts a new run)."""
        return BaseModel.model_dump(self)

    def error(self, key: str, problem: str) -> Sam4irError:
        """The one-line error for a bad value of ``key`` that only a stage can judge."""
        return Sam4irError(f"{self.where}: param '{key}': {problem}")


SSIM_WINDOW = 11  # BasicSR's SSIM: an 11 x 11 Gaussian window must fit the cropped image


def check_image_sizes(params: Params, *, train_side: int, test_side: int, what: str) -> None:
    """ValueError naming the key (``train.crop``, ``eval.crop_border``) whose value the images cannot take; the
    images' smallest training and test sides are ``what``."""
    if params.train.crop > train_side:
        raise ValueError(f"train.crop = {params.train.crop} is larger than the training images ({what})")
    if test_side - 2 * params.eval.crop_border < SSIM_WINDOW:
        raise ValueError(f"eval.crop_border = {params.eval.crop_border} leaves test images ({what}) smaller than "
                         f"SSIM's {SSIM_WINDOW}x{SSIM_WINDOW} window")


def parse_params(tree: dict, where: str) -> Params:
    """``tree`` (read from ``where``) as :class:`Params`; one-line ``Sam4irError`` naming its first offending key."""
    try:
        params = Params.model_validate(tree)
    except ValidationError as err:
        raise Sam4irError(_first_error(err, where)) from None
    params._where = where
    params._set_keys("")
    return params


def _first_error(err: ValidationError, where: str) -> str:
    first = err.errors(include_url=False)[0]
    key = ".".join(str(part) for part in first["loc"] if not re.fullmatch(r"function-(after|plain)\[.*\]", str(part)))
    message = first["msg"].removeprefix("Value error, ")
    more = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    keyed = first.get("ctx", {}).get("error")
    if isinstance(keyed, ParamError):
        return f"{where}: param '{keyed.key}': {message}{more}"
    if not key:  # a check across sections (Params' own validator): its message names the keys
        return f"{where}: {message}{more}"
    if first["type"] == "missing":
        return f"{where}: missing param '{key}'{more}"
    if first["type"] == "extra_forbidden":
        return f"{where}: unknown param '{key}' (misspelt? see docs/pipeline.md){more}"
    value = repr(first["input"])
    value = value if len(value) <= 60 else value[:57] + "..."
    return f"{where}: param '{key}' = {value}: {message}{more}"

"""SAM's automatic mask generator turned into label maps, with the image encoder batched.

``SamAutomaticMaskGenerator`` encodes one image (or crop) per ``predictor.set_image`` call.
The encoder is nearly all of SAM's cost, so without crops (``crop_n_layers == 0``) we encode
a whole batch in one ``image_encoder`` call and hand each image its precomputed features
through the predictor the generator already uses; prompts, decoding and filtering are
SAM's own code, unchanged.
"""

from __future__ import annotations

import inspect
import sys

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor
from segment_anything.modeling import Sam

from sam4ir.errors import Sam4irError
from sam4ir.sam.label_map import masks_to_label_map
from sam4ir.sam.names import SAM_AMP

AMP_DTYPES = dict(zip(SAM_AMP, (None, torch.bfloat16, torch.float16)))
GENERATOR_DEFAULTS = {  # every SamAutomaticMaskGenerator argument a YAML file can hold, with SAM's defaults
    name: p.default for name, p in inspect.signature(SamAutomaticMaskGenerator).parameters.items()
    if name not in ("model", "point_grids")
}
OUTPUT_MODES = ("binary_mask", "uncompressed_rle")  # coco_rle needs pycocotools and gives nothing extra here


class SamSegmenter:
    """``[H x W x 3 uint8 RGB] -> [H x W uint16]`` label maps from ``SamAutomaticMaskGenerator``.

    Images stay at full resolution: SAM resizes them to its input size itself and returns
    masks at image size. ``amp`` autocasts the image encoder only (on CUDA; ignored on CPU with
    a notice); its features go to the light decoder in float32, which keeps SAM's float code
    paths (NMS, stability scores) as they were.
    """

    def __init__(self, sam: Sam, generator: dict | None = None, *, amp: str = "none") -> None:
        kwargs = generator_kwargs(generator or {})
        if amp not in AMP_DTYPES:
            raise Sam4irError(f"sam.amp = {amp!r} is not one of {list(AMP_DTYPES)}")
        if amp != "none" and sam.device.type != "cuda":
            print(f"sam4ir: note: sam.amp={amp} applies on CUDA only; running SAM in float32 on {sam.device}",
                  file=sys.stderr)
            amp = "none"
        self.amp = amp
        try:
            self.generator = SamAutomaticMaskGenerator(sam, **kwargs)
        except (AssertionError, ValueError, TypeError) as err:
            raise Sam4irError(f"sam.generator: {err}") from None
        self.predictor = _BatchedPredictor(sam, AMP_DTYPES[amp])
        self.generator.predictor = self.predictor

    def __call__(self, images: list[np.ndarray]) -> list[np.ndarray]:
        if self.generator.crop_n_layers == 0:  # with crops the generator encodes each crop itself
            self.predictor.queue(images)
        return [masks_to_label_map(self.generator.generate(img), img.shape[:2]) for img in images]


def generator_kwargs(generator: dict) -> dict:
    """SAM's defaults overridden by ``generator``; unknown names, wrong types and unusable output modes are
    one-line errors (SAM itself would fail deep inside, or assert)."""
    unknown = sorted(set(generator) - set(GENERATOR_DEFAULTS))
    if unknown:
        raise Sam4irError(f"sam.generator.{unknown[0]}: not a SamAutomaticMaskGenerator argument "
                          f"(known: {', '.join(GENERATOR_DEFAULTS)})")
    for name, value in generator.items():
        kind = type(GENERATOR_DEFAULTS[name])
        ok = isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
        if not ok:
            raise Sam4irError(f"sam.generator.{name} = {value!r} should be of type {kind.__name__}")
    kwargs = {**GENERATOR_DEFAULTS, **generator}
    if kwargs["output_mode"] not in OUTPUT_MODES:
        raise Sam4irError(f"sam.generator.output_mode = {kwargs['output_mode']!r} is not one of {list(OUTPUT_MODES)}")
    return kwargs


class _BatchedPredictor(SamPredictor):
    """A ``SamPredictor`` whose ``set_image`` takes queued, batch-encoded features when there are any."""

    def __init__(self, sam: Sam, amp_dtype: torch.dtype | None) -> None:
        super().__init__(sam)
        self.amp_dtype = amp_dtype
        self._queued: list[tuple[tuple[int, int], tuple[int, int], torch.Tensor]] = []

    def queue(self, images: list[np.ndarray]) -> None:
        """Encode ``images`` in one encoder call; the next ``len(images)`` ``set_image`` calls use the result."""
        features, input_sizes = self.encode(images)
        self._queued = [(img.shape[:2], size, feat[None]) for img, size, feat in zip(images, input_sizes, features)]

    @torch.no_grad()
    def encode(self, images: list[np.ndarray]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """``B`` RGB images of any sizes -> (``B x C x h x w`` float32 features, resized ``(H', W')`` per image).

        Each image goes through SAM's own resize (long side -> encoder size) and ``preprocess``
        (normalise, pad to a square), so the batch stacks and equals the one-image path.
        """
        batch, input_sizes = [], []
        for image in images:
            resized = torch.as_tensor(self.transform.apply_image(image), device=self.device)
            input_sizes.append(tuple(resized.shape[:2]))
            batch.append(self.model.preprocess(resized.permute(2, 0, 1).contiguous()[None]))
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            features = self.model.image_encoder(torch.cat(batch))
        return features.float(), input_sizes

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        if image_format != self.model.image_format:
            raise ValueError(f"expected {self.model.image_format} images, got {image_format}")
        if self._queued:
            shape, input_size, features = self._queued.pop(0)
            if shape != image.shape[:2]:
                raise RuntimeError(f"queued features are for a {shape} image, got {image.shape[:2]}")
        else:
            batch_features, sizes = self.encode([image])
            features, input_size = batch_features, sizes[0]
        self.reset_image()
        self.original_size, self.input_size = image.shape[:2], input_size
        self.features, self.is_image_set = features, True

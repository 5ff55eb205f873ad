"""The names the ``sam.*`` params choose from, apart from the code they select, so that reading params (the
schema) does not import segment-anything and torchvision."""

SAM_MODEL_TYPES = ("vit_h", "vit_l", "vit_b")  # sam.model_type
SAM_AMP = ("none", "bf16", "fp16")  # sam.amp: the encoder's autocast dtype
CLASSICAL_METHODS = ("felzenszwalb", "slic")  # sam.classical.method
IMAGE_BACKENDS = ("sam", "classical")  # segment the image's pixels (also usable on restored images)
CONTROL_BACKENDS = ("oracle", "none", "shuffled")  # the prior-information controls (sam4ir.sam.controls)
BACKENDS = (*IMAGE_BACKENDS, *CONTROL_BACKENDS)  # sam.backend
SOURCE_DIRS = {"degraded": "input", "target": "target"}  # sam.source -> folder of data/prepared/<task>/<split>

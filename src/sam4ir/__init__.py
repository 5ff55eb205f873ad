"""sam4ir: distilling SAM's semantic priors into efficient image-restoration networks."""

from sam4ir.errors import Sam4irError

__all__ = ["Sam4irError"]

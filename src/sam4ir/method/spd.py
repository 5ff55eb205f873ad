"""SPD — semantic priors distillation: IR1's features are pulled toward IR2's semantically informed ones.

[ours] L_SPD = mean |A(ŷ1) − sg(A(ŷ2))| (``l1``) or its squared form (``l2``); sg = stop-gradient, so the
teacher branch is never pulled toward the student.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from sam4ir.errors import Sam4irError

SPD_LOSSES = ("l1", "l2")


def spd_loss(f_student: Tensor, f_teacher: Tensor, kind: str = "l1") -> Tensor:
    """Distance between B x C x H x W student and (detached) teacher features."""
    if f_student.shape != f_teacher.shape:
        raise Sam4irError(f"spd: student features {list(f_student.shape)} and teacher features "
                          f"{list(f_teacher.shape)} differ in shape")
    if kind == "l1":
        return F.l1_loss(f_student, f_teacher.detach())
    if kind == "l2":
        return F.mse_loss(f_student, f_teacher.detach())
    raise Sam4irError(f"distill.spd_loss: unknown loss '{kind}' (choose from {', '.join(SPD_LOSSES)})")

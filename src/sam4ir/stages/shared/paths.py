"""Where a task's files live (all under ``data/``), and the names of the runs that fill them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# the SPF teachers: IR2 trained on the frozen baseline's output with the label maps, and its no-region twin
TEACHER_RUNS = {"spd_sgr": "spf", "spd": "spf", "no_prior": "spf_no_prior"}
# the runs of the default DAG, which evaluate and report read (spd, the SPD-only row, is `-S distill.sgr_weight=0`
# of spd_sgr, or a `method` added to the distill matrix of dvc.yaml: it would cost a fifth of the demo's time)
EVALUATED = ("baseline", "control", "no_prior", "spd_sgr")


DATA = Path("data")


@dataclass(frozen=True)
class TaskPaths:
    """The on-disk layout of one task (all under ``data/``)."""

    task: str
    root: Path = DATA

    @property
    def prepared(self) -> Path:
        return self.root / "prepared" / self.task

    @property
    def masks(self) -> Path:
        return self.root / "masks" / self.task

    # runs/<method>/<task>: one DVC out per stage (a stage does every task: sam4ir.stages.shared.tasks)
    def run(self, method: str) -> Path:
        return self.root / "runs" / method / self.task

    def live(self, method: str) -> Path:
        return self.root / "live" / method / self.task

    def resume_state(self, method: str) -> Path:
        # Outside every DVC out on purpose: DVC deletes outs before re-running a stage, a resume state must survive.
        return self.root / ".resume" / f"{self.task}-{method}.pt"

    def resume_curves(self, method: str) -> Path:
        # Beside the resume state, for the same reason: the curves logged before a kill (sam4ir.stages.run).
        return self.root / ".resume" / f"{self.task}-{method}.live"

    @property
    def eval(self) -> Path:
        return self.root / "eval" / self.task

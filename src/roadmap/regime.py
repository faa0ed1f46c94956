"""The roadmap's description in the config: a step's metadata (from its file), a regime (what the
paper's two roadmaps differ in) and the paper's rows, which reports set beside a run's numbers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional

from .checks import MISSING, check_bounds


@dataclass
class PaperRow:
    """One row of the paper's table for a regime. `label` names the step where the regime names a
    network."""
    top1: Optional[float] = None
    top1_std: Optional[float] = None
    gflops: Optional[float] = None
    label: Optional[str] = None
    note: str = ""


@dataclass
class StepMeta:
    """A step, from its file; where it sits in the roadmap (`order`, from the chain of step files:
    never set it); the paper's row for it (`paper`, from the regime's table, so one step file serves
    every roadmap)."""
    name: str = MISSING
    label: str = MISSING
    adopted: bool = MISSING
    order: int = -1
    paper: Optional[PaperRow] = None


@dataclass
class RegimeConfig:
    """What the paper's two roadmaps differ in (configs/regime/): Table 10, ResNet-50 to ConvNeXt-T
    (r50), and Table 11, ResNet-200 to ConvNeXt-B (r200). Step files refer to these
    (`${regime.width}`), never to numbers."""
    name: str = MISSING
    title: str = MISSING
    baseline_depths: List[int] = MISSING
    depths: List[int] = MISSING  # from the stage-ratio step on
    baseline_width: int = MISSING
    narrow_width: int = MISSING  # from the stage-ratio step until the width step
    width: int = MISSING         # from the width step on
    drop_path: float = MISSING   # stochastic depth with the enhanced recipe
    paper: Dict[str, PaperRow] = MISSING  # by step name
    paper_source: str = MISSING  # where `paper` comes from, or why it is empty
    # a regime without paper numbers of its own (femto) is compared with another's (r50): its
    # reports take that regime's numbers, with this one's labels
    compare_with: Optional[str] = MISSING

    def __post_init__(self) -> None:
        check_bounds(self, "regime")

    def fill(self, meta: StepMeta) -> StepMeta:
        """`meta` with this regime's row of the paper (and its label, where the regime names the
        step)."""
        row = self.paper.get(meta.name)
        if row is not None:
            meta.paper, meta.label = row, row.label or meta.label
        return meta

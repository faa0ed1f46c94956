"""The leave-one-out study: the full model with one adopted step's own changes undone
(`undo=<step>`).

Undoing step S sets each field that S's file sets (its own fields, not its metadata) back to the
value it had just before S, taken from the step files of S's ancestors, so it follows the regime
(`${regime.depths}` stays an interpolation). A field that a later step of the chain sets again keeps
the later value: undoing the stage-ratio step restores the baseline's depths but keeps the width
that the width step chose. Where every field of S is set again later (`inverted_bottleneck/invert`
sets `layout: inverted`, then `large_kernel/move_up` sets `depthwise_first`), there is no network
"with S undone and the later change kept" (a depthwise-first block cannot be un-inverted), so
undoing S returns those fields to their value before S, and takes the later change of them with it:
undoing the inversion gives the bottleneck layout.

Steps that set no field of their own are not undone: `baseline/enhanced_recipe` changes the recipe
group, so its reverse is a plain run (`step=convnext_t recipe=classic`). `+sweep=leave_one_out` runs
the full model (the last adopted step) and one run per undoable step, all from the step files."""
from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..schema import RunConfig, flatten
from .steps import StepFile, file_values, roadmap_steps, step_files


def chain(step: str) -> list[StepFile]:
    """`step` and the steps it builds on, the roadmap's first step first."""
    files = {s.name: s for s in step_files()}
    if step not in files:
        raise ValueError(f"step {step!r} has no file in configs/step/; undo needs one of: {', '.join(sorted(files))}")
    out, s = [], files[step]
    while s is not None:
        out.append(s)
        s = files[s.parent] if s.parent else None
    return out[::-1]


def step_changes(s: StepFile) -> dict[str, Any]:
    """What a step file sets itself, as written (interpolations kept), its metadata and defaults
    left out."""
    return {k: v for k, v in file_values(s.path).items() if not k.startswith("step.")}


def undoable(step: str) -> list[str]:
    """The adopted steps of `step`'s chain that set fields of their own, in paper order."""
    return [
        s.name for s in chain(step)[1:] if s.meta.adopted and not s.is_alias and step_changes(s)
    ]


def full_model() -> str:
    """The roadmap's last adopted step (ConvNeXt-T in r50, ConvNeXt-B in r200)."""
    return max((s for s in roadmap_steps() if s.meta.adopted), key=lambda s: s.meta.order).name


def undo_changes(step: str, undo: str) -> dict[str, Any]:
    """The fields and values that undo step `undo` in step `step`'s network (see the module's
    docstring)."""
    valid = undoable(step)
    if undo not in valid:
        raise ValueError(f"undo={undo!r} is not a step to undo in {step}: valid undo choices: {', '.join(valid)} "
                         "(adopted steps before it that set fields of their own)")
    steps = chain(step)
    i = [s.name for s in steps].index(undo)
    before: dict[str, Any] = flatten(
        OmegaConf.to_container(OmegaConf.structured(RunConfig), resolve=False)
    )
    for s in steps[:i]:
        before.update(step_changes(s))
    own = step_changes(steps[i])
    later = set().union(*(step_changes(s) for s in steps[i + 1:]))
    restored = {k: before[k] for k in own if k not in later}
    return restored or {k: before[k] for k in own}


def apply_undo(cfg: DictConfig) -> DictConfig:
    """A copy of the composed config with `cfg.undo`'s changes undone; the config itself when undo is null (a copy
    costs as much as a tenth of a composition)."""
    if cfg.get("undo") is None:
        return cfg
    cfg = cfg.copy()
    for key, value in undo_changes(str(cfg.step.name), str(cfg.undo)).items():
        OmegaConf.update(cfg, key, value, merge=False)
    return cfg


def sweep_values() -> str:
    """`${roadmap_leave_one_out:}`: the full model (null) and every undoable step, for the
    sweeper."""
    return ",".join(["null", *undoable(full_model())])

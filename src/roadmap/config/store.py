"""What Hydra needs registered before it composes `configs/`: the typed schema (`run_schema`), the
resolvers that the configs use, and a source of config files that parses each file once (parsed.py).
run.py calls `register()` before Hydra starts; job processes that a launcher starts (submitit,
joblib) get it through roadmap.sweep, which Hydra imports for the sweep's callback."""
from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from ..schedule import ScheduleConfig, derive_schedule
from ..schema import RunConfig
from .parsed import register_parsed_once
from .steps import roadmap_steps
from .undo import full_model, sweep_values
from .variants import data_part, variant_dir


def register_schema() -> None:
    """`run_schema`: RunConfig, with `schedule` resolved from the train and budget settings."""
    schema = OmegaConf.structured(RunConfig)
    # what runs, in `--cfg job` too (run.py resolves what it prints)
    for name in vars(ScheduleConfig()):
        schema.schedule[name] = f"${{roadmap_schedule:{name}}}"
    ConfigStore.instance().store(name="run_schema", node=schema)


def register_resolvers() -> None:
    """`${roadmap_steps:}`: every step in paper order, from the step configs' metadata;
    `${roadmap_full_step:}` and `${roadmap_leave_one_out:}`: the leave-one-out study's model and
    undo list; `${roadmap_variant:${hydra:overrides.task}}`: the run directory's variant part
    (variants.py); `${roadmap_undo:${undo}}`: its `without/<step>/` part in the leave-one-out study;
    `${roadmap_data:}`: its data part (the dataset's name; an image folder's names the folder);
    `${roadmap_schedule:epochs}` (and the other fields of ScheduleConfig): what runs, from train.*
    and budget.*."""
    resolvers = {"roadmap_steps": lambda: ",".join(s.name for s in roadmap_steps()),
                 "roadmap_full_step": full_model, "roadmap_leave_one_out": sweep_values,
                 "roadmap_variant": lambda overrides: variant_dir(list(overrides)),
                 "roadmap_undo": lambda undo: "" if undo is None else f"without/{undo}/",
                 "roadmap_data": lambda _root_: data_part(
                     _root_.data.name, OmegaConf.select(_root_, "data.root", default=None, throw_on_missing=False)),
                 "roadmap_schedule": schedule_value}
    for name, fn in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn)


def schedule_value(name: str, _root_):
    """One field of what runs (ScheduleConfig), from the composed train and budget; None where they
    are invalid (the run's own checks then name the bad setting)."""
    try:
        train, budget = OmegaConf.to_object(_root_.train), OmegaConf.to_object(_root_.budget)
    except Exception:  # noqa: BLE001 - reported by the checks of RunConfig, in one line
        return None
    return getattr(derive_schedule(train, budget), name)


_REGISTERED: list[bool] = []


def register() -> None:
    """All three, once per process (a later call does nothing)."""
    if not _REGISTERED:
        register_schema()
        register_resolvers()
        register_parsed_once()
        _REGISTERED.append(True)

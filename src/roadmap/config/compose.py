"""Compose `configs/` into a typed, checked `RunConfig`, from notebooks, tests, scripts and run.py's
preflight."""
from __future__ import annotations

import difflib
import re
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from ..checks import check_auto_augment
from ..regime import PaperRow
from ..schema import RunConfig, flatten
from .files import GROUPS, config_dir, options
from .steps import step_order
from .store import register
from .undo import apply_undo

SCHEMA = OmegaConf.structured(RunConfig)  # made once (a third of a typed config's time); merge copies, never changes it
SETTINGS = set(flatten(OmegaConf.to_container(SCHEMA))) | {"undo"}
# Where each section's values live, as sets of files under configs/: a value the schema leaves MISSING (???) is given
# by every file of one of its sets, and one with a default in the schema by none, so that a default changed in
# Python changes the runs (tests/test_config.py checks both).
HOMES = {"regime": [["regime/*.yaml"]], "model": [["step/baseline/resnet50.yaml"], ["recipe/*.yaml"]],
         "train": [["recipe/*.yaml"]], "data": [["data/*.yaml"]], "budget": [["budget/*.yaml"]],
         "wandb": [["wandb/*.yaml"]], "paths": [["paths/*.yaml"]], "system": [], "step": [["step/*/*.yaml"]]}
PAPER_ROW = set(OmegaConf.to_container(OmegaConf.structured(PaperRow)))


def unknown_setting(key: str) -> str:
    section = key.rsplit(".", 1)[0] + "." if "." in key else ""
    if not any(k.startswith(section) for k in SETTINGS):
        section = ""  # an unknown section: list the top level
    leaves = {k.rsplit(".", 1)[-1]: k for k in sorted(SETTINGS)}
    close = difflib.get_close_matches(key, SETTINGS, n=1) or \
        [leaves[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], leaves, n=1)]
    fields = ", ".join(
        sorted({k[len(section) :].split(".")[0] for k in SETTINGS if k.startswith(section)})
    )
    return (f"{key} is not a setting{f' (did you mean {close[0]}?)' if close else ''}; "
            f"the settings{f' of {section[:-1]}' if section else ''} are: {fields}")


def home(section: str) -> str:
    """Where a user gives a section's open values: configs/data/, configs/step/ (or configs/recipe/)."""
    folders = list(dict.fromkeys(f"configs/{files[0].split('/')[0]}/" for files in HOMES.get(section, [])))
    return (folders[0] + "".join(f" (or {f})" for f in folders[1:])) if folders else "configs/"


def check_keys(cfg: DictConfig) -> None:
    """Every key is a field of RunConfig (`+model.kernal_size=5` would add one), and every `???` was
    given."""
    given = flatten(OmegaConf.to_container(cfg))  # unresolved: ${...} and ??? as written
    for key in given:
        # a table: rows by step name, each with PaperRow's fields
        if key.startswith("regime.paper."):
            if key.rsplit(".", 1)[-1] not in PAPER_ROW:
                raise ValueError(f"{key}: a paper row's fields are {', '.join(sorted(PAPER_ROW))}")
        elif key not in SETTINGS:
            raise ValueError(unknown_setting(key))
    missing = sorted(k for k, v in given.items() if v == "???")
    if missing:
        homes = sorted({home(k.split(".")[0]) for k in missing})
        raise ValueError(
            f"{' and '.join(missing)} must be set: the chosen configs leave them open (???). Add "
            f"{' '.join(k + '=...' for k in missing)} to the command line, or give them in the chosen "
            f"file of {' and '.join(homes)}"
        )


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Typed, validated config. Raises ValueError naming the bad field and what is allowed."""
    run = typed_config(cfg)
    check_network(run)
    return run


def typed_config(cfg: DictConfig) -> RunConfig:
    """The typed config with every check that needs neither torch nor timm (what a mistyped command
    meets first, answered before they load); `check_network` does the rest."""
    check_keys(cfg)
    cfg = apply_undo(cfg)
    if OmegaConf.get_type(cfg) is not RunConfig:  # what Hydra composed is typed already (run_schema), 14 ms sooner
        cfg = OmegaConf.merge(SCHEMA, cfg)
    try:
        run = OmegaConf.to_object(cfg)
    except Exception as e:  # OmegaConf wraps errors raised in __post_init__
        cause = e.__cause__ if isinstance(e.__cause__, ValueError) else e
        raise ValueError(str(cause).split("\n    full_key")[0]) from e
    if run.step.order != -1:
        raise ValueError(f"step.order={run.step.order} is not allowed: no value of its own: a step's place follows "
                         "from the chain of step files (configs/step/)")
    run.step.order = step_order(run.step.name)
    return run


def check_network(run: RunConfig) -> None:
    """The checks that build the network (on the meta device) or ask timm: each layer runs at
    data.resolution, and timm reads train.auto_augment. Imports torch and timm."""
    from ..model.measure import check_input_size

    check_input_size(run.model, run.data.resolution)
    if run.train.auto_augment:  # here, not in TrainConfig: a schema must not need timm
        check_auto_augment(run.train.auto_augment)


def check_choices(overrides: Sequence[str]) -> None:
    """Fail on an unknown group choice (`step=micro/gelux`) with the list of valid ones.

    Hydra's own message lists only the top level of nested groups such as step/."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        # sweep functions: Hydra checks those
        if not sep or key not in GROUPS or "(" in value or "$" in value:
            continue
        for choice in value.split(","):  # a multirun list
            valid = options(key)
            if choice not in valid:
                leaves = {v.rsplit("/", 1)[-1]: v for v in valid}  # step=gelu: micro/gelu
                close = difflib.get_close_matches(choice, valid, n=1) or [
                    leaves[m]
                    for m in difflib.get_close_matches(choice.rsplit("/", 1)[-1], leaves, n=1)
                ]
                raise ValueError(
                    f"unknown {key} {choice!r}{f' (did you mean {close[0]}?)' if close else ''}; "
                    f"valid {key} choices: {', '.join(valid)}"
                )


def compose_dict(
    step: str | None = None, overrides: Sequence[str] = (), hydra: bool = False
) -> DictConfig:
    """The composed config (with Hydra's own node if `hydra`); a composition error becomes a
    one-line ValueError that names the setting."""
    overrides = ([f"step={step}"] if step else []) + list(overrides)
    check_choices(overrides)
    register()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base=None):
        try:
            return compose("config", overrides=overrides, return_hydra_config=hydra)
        except ConfigCompositionException as e:
            cause = str(e.__cause__ or "")
            named = re.search(r"override '([^']+)'", str(e)) or re.search(r"full_key: (\S+)", cause)
            key = named.group(1) if named else None
            if key is not None and key not in SETTINGS and "not in" in cause:
                raise ValueError(unknown_setting(key)) from e
            lines = str(e).splitlines() + cause.split("\n    full_key")[0].splitlines()
            raise ValueError(
                ": ".join(line.strip().rstrip(".") for line in lines if line.strip())
            ) from e


def load_config(step: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Compose the step (e.g. "micro/gelu") with Hydra overrides (e.g. ["model.kernel_size=9"])."""
    return to_run_config(compose_dict(step, overrides))

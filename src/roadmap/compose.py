"""Compose `configs/` into a typed `RunConfig`, from notebooks, tests and scripts (run.py uses Hydra directly)."""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Sequence

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf, open_dict

from .config import PaperRow, RunConfig
from .measure import check_input_size


def config_dir() -> Path:
    """`configs/` of this checkout, or $ROADMAP_CONFIG_DIR."""
    path = Path(os.environ.get("ROADMAP_CONFIG_DIR") or Path(__file__).resolve().parents[2] / "configs")
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(
            f"no config.yaml in {path}: install the package editable from its checkout (pip install -e .) "
            "or set ROADMAP_CONFIG_DIR to the repository's configs/ folder")
    return path


def flatten(d: dict, prefix: str = "") -> dict:
    """{"model": {"kernel_size": 7}} -> {"model.kernel_size": 7}"""
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


SETTINGS = set(flatten(OmegaConf.to_container(OmegaConf.structured(RunConfig)))) | {"undo"}
PAPER_ROW = set(OmegaConf.to_container(OmegaConf.structured(PaperRow)))


def unknown_setting(key: str) -> str:
    section = key.rsplit(".", 1)[0] + "." if "." in key else ""
    if not any(k.startswith(section) for k in SETTINGS):
        section = ""  # an unknown section: list the top level
    leaves = {k.rsplit(".", 1)[-1]: k for k in sorted(SETTINGS)}
    close = difflib.get_close_matches(key, SETTINGS, n=1) or \
        [leaves[m] for m in difflib.get_close_matches(key.rsplit(".", 1)[-1], leaves, n=1)]
    fields = ", ".join(sorted({k[len(section):].split(".")[0] for k in SETTINGS if k.startswith(section)}))
    return (f"{key} is not a setting{f' (did you mean {close[0]}?)' if close else ''}; "
            f"the settings{f' of {section[:-1]}' if section else ''} are: {fields}")


def check_keys(cfg: DictConfig) -> None:
    """Every key is a field of RunConfig (`+model.kernal_size=5` would add one), and every `???` was given."""
    given = flatten(OmegaConf.to_container(cfg))  # unresolved: ${...} and ??? as written
    for key in given:
        if key.startswith("regime.paper."):  # a table: rows by step name, each with PaperRow's fields
            if key.rsplit(".", 1)[-1] not in PAPER_ROW:
                raise ValueError(f"{key}: a paper row's fields are {', '.join(sorted(PAPER_ROW))}")
        elif key not in SETTINGS:
            raise ValueError(unknown_setting(key))
    missing = sorted(k for k, v in given.items() if v == "???")
    if missing:
        raise ValueError(f"{' and '.join(missing)} must be set: the chosen configs leave them open (???). Add "
                         f"{' '.join(k + '=...' for k in missing)} to the command line")


def to_run_config(cfg: DictConfig) -> RunConfig:
    """Typed, validated config. Raises ValueError naming the bad field and what is allowed."""
    from .leave_one_out import apply_undo  # it reads the step files, through steps.py, which imports this module
    check_keys(cfg)
    cfg = OmegaConf.merge(OmegaConf.structured(RunConfig), apply_undo(cfg.copy()))
    try:
        run = OmegaConf.to_object(cfg)
    except Exception as e:  # OmegaConf wraps errors raised in __post_init__
        cause = e.__cause__ if isinstance(e.__cause__, ValueError) else e
        raise ValueError(str(cause).split("\n    full_key")[0]) from e
    check_input_size(run.model, run.data.resolution)
    return run


GROUPS = ("step", "regime", "recipe", "data", "budget", "wandb", "sweep", "experiment")


def options(group: str) -> list[str]:
    """The choices of a config group, e.g. options("step") -> ["baseline/enhanced_recipe", ...]."""
    root = config_dir() / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))


def check_choices(overrides: Sequence[str]) -> None:
    """Fail on an unknown group choice (`step=micro/gelux`) with the list of valid ones.

    Hydra's own message lists only the top level of nested groups such as step/."""
    for item in overrides:
        key, sep, value = item.lstrip("+~").partition("=")
        if not sep or key not in GROUPS or "(" in value or "$" in value:  # sweep functions: Hydra checks those
            continue
        for choice in value.split(","):  # a multirun list
            valid = options(key)
            if choice not in valid:
                close = difflib.get_close_matches(choice, valid, n=1)
                raise ValueError(f"unknown {key} {choice!r}{f' (did you mean {close[0]}?)' if close else ''}; "
                                 f"valid {key} choices: {', '.join(valid)}")


DIRECTORIES = ("hydra.run.dir", "hydra.sweep.dir", "hydra.sweep.subdir")
# Hydra's flags that take a value (`--cfg job`), and --info's optional one
VALUED_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                "-cd", "--experimental-rerun", "--shell-completion", "-sc"}
INFO_TOPICS = {"all", "config", "defaults", "defaults-tree", "plugins", "searchpath"}


def hydra_overrides(argv: Sequence[str]) -> list[str]:
    """The overrides of a command line, without Hydra's flags and their values."""
    out, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
        elif a.startswith("-"):
            skip = a in VALUED_FLAGS or (a in ("--info", "-i") and i + 1 < len(argv) and argv[i + 1] in INFO_TOPICS)
        else:
            out.append(a)
    return out


def check_command_line(argv: Sequence[str]) -> None:
    """Everything that can be told from the command line alone, before Hydra writes anything: each override
    parses, no setting is given twice, no output directory is empty, and every group choice exists."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException, OverrideParseException
    overrides = hydra_overrides(argv)
    parser, seen = OverridesParser.create(), {}
    for item in overrides:
        try:
            parsed = parser.parse_override(item)
        except (OverrideParseException, HydraException) as e:
            hint = " (only ASCII letters, digits and _-./ outside quotes)" if not item.isascii() else ""
            raise ValueError(f"{item!r} is not an override Hydra can read{hint}: "
                             f"{str(e).splitlines()[0].split(': ', 1)[-1]}; write key=value") from None
        key = parsed.get_key_element().lstrip("+~")
        if key in seen:
            raise ValueError(f"{key} is given twice ({seen[key]!r} and {item!r}); give it once (a sweep takes "
                             f"a list: {key}=a,b)")
        seen[key] = item
        if key in DIRECTORIES and not (parsed.value() or "").strip():
            raise ValueError(f"{key}='' is not allowed: an empty directory would put the run's files into the "
                             "current directory; give a directory, or leave the setting out")
    check_choices(overrides)


def compose_dict(step: str | None = None, overrides: Sequence[str] = (), hydra: bool = False) -> DictConfig:
    """The composed config (with Hydra's own node if `hydra`); a composition error becomes a one-line
    ValueError that names the setting."""
    overrides = ([f"step={step}"] if step else []) + list(overrides)
    check_choices(overrides)
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
            raise ValueError(": ".join(line.strip().rstrip(".") for line in lines if line.strip())) from e


def preflight(argv: Sequence[str], checks: Sequence = ()) -> None:
    """Check a single run's command line before Hydra creates its directory: compose and validate the config,
    and create the run directory. Raises ValueError with one line naming the setting. A multirun's (-m) jobs
    are checked one by one as they start, and counted by the sweep's summary."""
    if any(a.startswith("-") for a in argv):  # -m, --cfg, --help: Hydra's to handle
        return
    from hydra.core.hydra_config import HydraConfig
    cfg = compose_dict(None, argv, hydra=True)
    HydraConfig.instance().set_config(cfg)  # for ${hydra:...} in the run directory's name
    run_dir = Path(cfg.hydra.run.dir)
    with open_dict(cfg):
        del cfg["hydra"]
    run = to_run_config(cfg)
    for check in checks:  # the entry point's: the device and the data, before anything is written
        check(run)
    made = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    probe = run_dir / f".write-test-{os.getpid()}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"x")  # a full disk or a read-only mount fails here, not in Hydra's log handler
        probe.unlink()
    except OSError as e:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
        for d in made:  # only what this check created, deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        raise ValueError(f"hydra.run.dir={str(run_dir)!r} cannot be written ({e.strerror or e}); a run writes its "
                         "log, lock and records there: free space, or choose a writable directory") from None


def load_config(step: str | None = None, overrides: Sequence[str] = ()) -> RunConfig:
    """Compose the step (e.g. "micro/gelu") with Hydra overrides (e.g. ["model.kernel_size=9"])."""
    return to_run_config(compose_dict(step, overrides))

"""What run.py checks before Hydra writes anything: the config files (each is YAML), the command
line alone (each override parses, no setting given twice, no empty output directory, every group
choice exists), then a single run's whole config and its run directory (preflight)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, OverrideParseException
from omegaconf import open_dict

from ..schema import RunConfig
from .compose import check_choices, check_network, compose_dict, typed_config
from .files import check_files

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
            skip = a in VALUED_FLAGS or (
                a in ("--info", "-i") and i + 1 < len(argv) and argv[i + 1] in INFO_TOPICS
            )
        else:
            out.append(a)
    return out


def printed_config(argv: Sequence[str]) -> str | None:
    """What `--cfg job|hydra|all` (or `-c`) asks Hydra to print; None without it."""
    for i, a in enumerate(argv):
        if a.startswith("--cfg="):
            return a.split("=", 1)[1]
        if a in ("--cfg", "-c") and i + 1 < len(argv):
            return argv[i + 1]
    return None


def check_command_line(argv: Sequence[str]) -> None:
    """Everything that can be told from the command line alone, before Hydra writes anything: each
    override parses, no setting is given twice, no output directory is empty, and every group choice
    exists."""
    check_files()
    overrides = hydra_overrides(argv)
    parser, seen = OverridesParser.create(), {}
    for item in overrides:
        try:
            parsed = parser.parse_override(item)
        except (OverrideParseException, HydraException) as e:
            hint = (
                " (only ASCII letters, digits and _-./ outside quotes)"
                if not item.isascii()
                else ""
            )
            raise ValueError(
                f"{item!r} is not an override Hydra can read{hint}: "
                f"{str(e).splitlines()[0].split(': ', 1)[-1]}; write key=value"
            ) from None
        key = parsed.get_key_element().lstrip("+~")
        if key in seen:
            raise ValueError(
                f"{key} is given twice ({seen[key]!r} and {item!r}); give it once (a sweep takes "
                f"a list: {key}=a,b)"
            )
        seen[key] = item
        if key in DIRECTORIES and not (parsed.value() or "").strip():
            raise ValueError(
                f"{key}='' is not allowed: an empty directory would put the run's files into the "
                "current directory; give a directory, or leave the setting out"
            )
    check_choices(overrides)


def preflight(argv: Sequence[str], checks: Sequence = ()) -> RunConfig | None:
    """Check a single run's command line before Hydra creates its directory: compose and validate
    the config, and create the run directory. Returns the run's config, which the run then uses
    (None for a command Hydra handles: -m, --cfg, --help). Raises ValueError with one line naming
    the setting. A multirun's (-m) jobs are checked one by one as they start (what all of them would
    be refused for, before the first: roadmap.sweep), and counted by the sweep's summary. run.py
    calls its two halves apart, to load torch between them."""
    single = compose_single(argv)
    return None if single is None else prepare_single(*single, checks=checks)


def compose_single(argv: Sequence[str]) -> tuple[RunConfig, Path] | None:
    """A single run's typed config and run directory, with every check that needs neither torch nor
    timm; None for a command Hydra handles (-m, --cfg, --help). Writes nothing. The config that `--cfg`
    prints is what would run: one that a run would refuse is refused here too."""
    if any(a.startswith("-") for a in argv):  # -m, --cfg, --help: Hydra's to handle
        if printed_config(argv) and not any(a in ("-m", "--multirun") for a in argv):
            typed_config(compose_dict(None, hydra_overrides(argv)))
        return None
    cfg = compose_dict(None, argv, hydra=True)
    HydraConfig.instance().set_config(cfg)  # for ${hydra:...} in the run directory's name
    run_dir = Path(cfg.hydra.run.dir)
    with open_dict(cfg):
        del cfg["hydra"]
    return typed_config(cfg), run_dir


def prepare_single(run: RunConfig, run_dir: Path, checks: Sequence = ()) -> RunConfig:
    """The checks that need the network (torch, timm), then the entry point's (the device and the
    data), then the run directory: made, and written to once, before Hydra opens its log there."""
    check_network(run)
    for check in checks:
        check(run)
    made = [d for d in (run_dir, *run_dir.parents) if not d.exists()]
    probe = run_dir / f".write-test-{os.getpid()}"
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        # a full disk or a read-only mount fails here, not in Hydra's log handler
        probe.write_bytes(b"x")
        probe.unlink()
    # a write that failed, or a signal meanwhile: nothing of this check is left
    except BaseException as e:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass
        for d in made:  # only what this check created, deepest first
            try:
                d.rmdir()
            except OSError:
                pass
        if not isinstance(e, OSError):
            raise
        raise ValueError(f"hydra.run.dir={str(run_dir)!r} cannot be written ({e.strerror or e}); a run writes its "
                         "log, lock and records there: free space, or choose a writable directory") from None
    return run

"""The roadmap's steps, read from the metadata in `configs/step/` (the one list of steps)."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import OmegaConf

from ..regime import RegimeConfig, StepMeta
from ..schema import flatten
from .files import config_dir
from .parsed import parse

STEP_PREFIX = "/step/"


@dataclass(frozen=True)
class StepFile:
    name: str          # the config option, e.g. "micro/gelu"
    parent: str | None  # the step it inherits from
    meta: StepMeta
    path: Path

    @property
    def is_alias(self) -> bool:
        return self.meta.name != self.name


def parsed(path: Path):
    """The file's config as parsed once per content of the file (parsed.py): shared, never to be changed (merge and
    to_container copy it)."""
    return parse(str(path))[0]


def read_step_file(path: Path, root: Path) -> StepFile:
    raw = parsed(path)
    name = path.relative_to(root).with_suffix("").as_posix()
    parents = [
        d for d in raw.get("defaults", []) if isinstance(d, str) and d.startswith(STEP_PREFIX)
    ]
    parent = parents[0][len(STEP_PREFIX):] if parents else None
    own = raw.get("step")
    meta = StepMeta(**OmegaConf.to_container(own)) if own is not None else None
    if meta is None:  # an alias: the metadata of what it points to
        meta = read_step_file(root / f"{parent}.yaml", root).meta
    return StepFile(name, parent, meta, path)


_FILES: dict = {}  # the step files as read, under their paths and contents


def step_files() -> list[StepFile]:
    """Every step file, each with its place in the roadmap (`meta.order`, see `ordered`). Every composition asks
    (for a step's place, for undo): the places are worked out again only when a file was added, removed or changed
    (by content, as parse keeps them: a file changed in place, its time and size kept, too)."""
    root = config_dir() / "step"
    paths = sorted(root.rglob("*.yaml"))
    key = tuple((path, path.read_bytes()) for path in paths)
    if key not in _FILES:
        _FILES.clear()
        _FILES[key] = ordered([read_step_file(p, root) for p in paths])
    return [replace(f, meta=replace(f.meta)) for f in _FILES[key]]  # copies: a caller may fill in a meta


def ordered(files: list[StepFile]) -> list[StepFile]:
    """The files with their steps' places: a step comes after the one it builds on (its chain of
    `/step/` defaults is the one record of the order), and steps over the same step by their names
    (k5, k7, k9, k11)."""
    by_name = {f.name: f for f in files}

    def depth(f: StepFile) -> int:
        return 0 if f.parent is None else 1 + depth(by_name[f.parent])

    def natural(name: str) -> list:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    steps = sorted((f for f in files if not f.is_alias), key=lambda f: (depth(f), natural(f.name)))
    order = {f.name: i for i, f in enumerate(steps)}
    return [replace(f, meta=replace(f.meta, order=order[f.meta.name])) for f in files]


def step_order(name: str) -> int:
    """A step's place in the roadmap (-1: a step of no file)."""
    return next((f.meta.order for f in step_files() if f.name == name), -1)


def load_regime(name: str = "r50") -> RegimeConfig:
    """A regime of configs/regime/ (r50: Table 10, r200: Table 11)."""
    root = config_dir() / "regime"
    valid = sorted(p.stem for p in root.glob("*.yaml"))
    if name not in valid:
        raise ValueError(f"unknown regime {name!r}; valid regime choices: {', '.join(valid)}")
    regime = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(RegimeConfig), parsed(root / f"{name}.yaml")))
    # the other regime's numbers with this one's labels (the other's name its networks)
    if regime.compare_with:
        own = regime.paper
        regime.paper = {step: replace(row, label=own[step].label if step in own else None,
                                      note=own[step].note if step in own else "")
                        for step, row in load_regime(regime.compare_with).paper.items()}
    return regime


def roadmap_steps(regime: str = "r50") -> list[StepFile]:
    """Every step in paper order, aliases left out, with the regime's paper numbers and labels."""
    r = load_regime(regime)
    steps = sorted((s for s in step_files() if not s.is_alias), key=lambda s: s.meta.order)
    return [replace(s, meta=r.fill(replace(s.meta))) for s in steps]


def file_values(path: Path) -> dict:
    """What a config file sets itself (not through its defaults), by dotted key, as written
    (interpolations kept)."""
    raw = OmegaConf.to_container(parsed(path), resolve=False)
    raw.pop("defaults", None)
    return flatten(raw)


def file_fields(path: Path) -> set[str]:
    """Dotted keys a step file sets itself (not through its defaults)."""
    return set(file_values(path))

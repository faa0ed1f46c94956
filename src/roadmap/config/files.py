"""Where the configs are, and what each config group offers."""
from __future__ import annotations

import os
from pathlib import Path


def config_dir() -> Path:
    """`configs/` of this checkout, or $ROADMAP_CONFIG_DIR."""
    given = os.environ.get("ROADMAP_CONFIG_DIR")
    path = Path(given or Path(__file__).resolve().parents[3] / "configs")
    if not (path / "config.yaml").is_file():
        if given:
            raise ValueError(f"ROADMAP_CONFIG_DIR={given!r} is not allowed: it holds no config.yaml; set it to the "
                             "repository's configs/ folder, or unset it")
        raise ValueError(f"no config.yaml in {path}: install the package editable from its checkout (pip install "
                         "-e .) or set ROADMAP_CONFIG_DIR to the repository's configs/ folder")
    return path


def check_files() -> None:
    """ValueError naming the first config file that is not valid YAML, with its line (before Hydra
    reads them). Each content of a file is parsed once per process, and Hydra's composition reuses it
    (parsed.py): a check of every file costs the reading of them."""
    from .parsed import parse
    for path in sorted(config_dir().rglob("*.yaml")):
        try:
            parse(str(path))
        except Exception as e:  # yaml's ScannerError, ParserError, ...; OmegaConf's own
            where = getattr(e, "problem_mark", None)
            line = f" (line {where.line + 1})" if where is not None else ""
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ValueError(
                f"{path} is not valid YAML{line}: {problem}; fix or restore it"
            ) from None


GROUPS = ("step", "regime", "recipe", "data", "budget", "wandb", "sweep", "experiment")


def options(group: str) -> list[str]:
    """The choices of a config group, e.g. options("step") -> ["baseline/enhanced_recipe", ...]."""
    root = config_dir() / group
    return sorted(p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.yaml"))

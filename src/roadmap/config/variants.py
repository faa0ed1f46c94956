"""Run directories: one per combination of the overrides that change what a run computes.

`python run.py step=micro/gelu model.kernel_size=5` runs in
`.../micro/gelu/model.kernel_size=5/seed0`, beside `.../micro/gelu/seed0`. The step, seed, data and
budget have their own parts of the path; where and how a run executes (system.*, wandb.*,
data.num_workers, data.root, data.download) does not change its numbers and is left out, so such a
change resumes the same run; but an image folder's root is its dataset: its part of the path names
the folder (`data_part`). A variant too long or odd for a file name becomes `v-<hash>`; the
overrides are kept in full in the run's metrics.json (`variant`) and overrides.yaml."""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser

from ..schema import RESUMABLE_CHANGES

# groups and fields the path already names
IN_PATH = {"step", "seed", "data", "budget", "regime", "undo", "sweep", "experiment", "wandb"}
SAFE = re.compile(r"[\w.=,+~\-\[\]:]{1,96}")


def variant_name(overrides: Sequence[str]) -> str:
    """The overrides that define this variant, as given, comma-separated ("" for the step as it
    is)."""
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    keep = [
        o.input_line
        for o in parsed
        if o.key_or_group not in IN_PATH
        and not o.key_or_group.startswith((*RESUMABLE_CHANGES, "hydra."))
    ]
    return ",".join(keep)


def variant_dir(overrides: Sequence[str]) -> str:
    """The path part for the variant, with a trailing slash, or "" (used in configs/config.yaml)."""
    name = variant_name(overrides)
    if not name:
        return ""
    if not SAFE.fullmatch(name):
        name = "v-" + hashlib.sha1(name.encode()).hexdigest()[:10]
    return name + "/"


def data_part(name: str, root: str | None) -> str:
    """The data's part of a run's and a sweep's directory: the dataset's name; for an image folder,
    whose folder is the dataset, the folder's name and a hash of its full path (`image_folder-
    flowers-1a2b3c4d`), so that two folders never share a run (moving the folder makes it another)."""
    if name != "image_folder" or not root:
        return name
    path = os.path.realpath(os.path.expanduser(str(root)))
    leaf = re.sub(r"[^\w.-]", "_", Path(path).name)[:40] or "root"
    return f"{name}-{leaf}-{hashlib.sha1(path.encode()).hexdigest()[:8]}"

"""Tab completion of nested config groups: `python run.py step=<TAB>` offers every step
(`step=micro/gelu`, ...).

Hydra's completion (`eval "$(python run.py -sc install=bash)"`) lists a group's options one folder
at a time, so it offers `step=convnext_t` only, and `step/micro=gelu`, which is not an override of
the `step` group and fails. run.py answers Hydra's completion query itself for a word `<group>=...`
(or `<group>/...`) of a group with nested options, and leaves every other word to Hydra."""
from __future__ import annotations

import os
import shlex
from typing import Mapping, Sequence

from .files import GROUPS, options

QUERY_FLAGS = ("-sc", "--shell-completion")


def nested_completions(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> str | None:
    """The answer to `run.py -sc query=<shell>` (COMP_LINE in `environ`) when its last word is a
    choice of a nested group, in the shell's format (fish: one per line; bash and zsh:
    space-separated); None where Hydra answers."""
    shells = [argv[i + 1].partition("=")[2] for i, a in enumerate(argv[:-1])
              if a in QUERY_FLAGS and argv[i + 1].startswith("query=")]
    line = environ.get("COMP_LINE")
    if not shells or line is None or not line or line[-1].isspace():
        return None
    try:
        word = shlex.split(line)[-1]
    except ValueError:  # an open quote
        return None
    prefix = word[:len(word) - len(word.lstrip("+~"))]
    key, eq, value = word[len(prefix):].partition("=")
    group = key.split("/")[0]
    if group not in GROUPS or not (eq or "/" in key):
        return None
    choices = options(group)
    if not any("/" in c for c in choices):
        return None
    # `step/micro=ge`: the shell keeps only answers that start with the word, and `step/...`
    # overrides fail, so nothing is offered (`step=micro/ge` is the form that works). In a sweep's
    # list the last item is completed.
    done, _, last = value.rpartition(",")
    done += "," if done else ""
    found = [
        f"{prefix}{group}={done}{c}" for c in choices if eq and key == group and c.startswith(last)
    ]
    return ("\n" if shells[0] == "fish" else " ").join(found)

"""Tab completion through Hydra's own bash script: `step=<TAB>` offers every step, nested ones included."""
import shlex
import subprocess

from conftest import ROOT, clean_env

from roadmap.completion import nested_completions
from roadmap.compose import options

STEPS = options("step")


def complete(*lines: str) -> list[list[str]]:
    """What bash offers for each line with Hydra's completion installed (`eval "$(python run.py -sc install=bash)"`)."""
    script = 'eval "$(python run.py -sc install=bash)"; ' + "".join(
        f'LINE={shlex.quote(line)}; COMP_LINE="$LINE"; COMP_WORDS=($LINE); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); '
        'COMP_POINT=${#COMP_LINE}; COMPREPLY=(); hydra_bash_completion; printf "%s\\n" "${COMPREPLY[@]}" "--"; '
        for line in lines)
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=120, check=True)
    return [[w for w in block.splitlines() if w] for block in proc.stdout.split("--\n")[:-1]]


def test_step_tab_offers_every_step_and_each_one_completes_a_sweep_list():
    assert any("/" in s for s in STEPS) and "micro/gelu" in STEPS
    every, one, listed, other = complete("python run.py step=", "python run.py step=micro/g",
                                         "python run.py -m step=micro/gelu,large_kernel/k1",
                                         "python run.py model.kernel_s")
    assert every == [f"step={s}" for s in STEPS]
    assert one == ["step=micro/gelu"]
    assert listed == ["step=micro/gelu,large_kernel/k11"]
    assert other == ["model.kernel_size="]  # every other word: Hydra's answer


def test_nested_group_paths_are_not_offered_and_other_shells_get_their_format():
    env = {"COMP_LINE": "python run.py step/micro="}
    assert nested_completions(["-sc", "query=bash"], env) == ""  # `step/micro=gelu` would fail: nothing offered
    fish = nested_completions(["-sc", "query=fish"], {"COMP_LINE": "python run.py +step=micro/f"})
    assert fish.splitlines() == ["+step=micro/fewer_acts", "+step=micro/fewer_norms"]
    assert nested_completions(["-sc", "query=bash"], {"COMP_LINE": "python run.py +sweep=r"}) is None  # flat: Hydra
    assert nested_completions(["step=micro/gelu"], {"COMP_LINE": "python run.py step="}) is None  # not a query

"""The configuration: the paper's tables in the regimes, the step files and what each sets, composing and
checking a config, undoing a step (the leave-one-out study), run-directory names, and tab completion."""
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from types import MappingProxyType

import pytest
from conftest import CHAIN, FAST, FULL, ROOT, clean_env, last_wins, run_cli, run_script, step_composed, step_config
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from roadmap import load_config, roadmap_steps
from roadmap.config.completion import nested_completions
from roadmap.config.compose import compose_dict
from roadmap.config.files import options
from roadmap.config.steps import file_fields, file_values, step_files
from roadmap.config.store import register
from roadmap.config.undo import apply_undo, full_model, undo_changes, undoable
from roadmap.config.variants import variant_dir, variant_name
from roadmap.model import describe
from roadmap.record import RunRecord
from roadmap.schema import flatten
from roadmap.train.tracking import run_identity


def _resolved(cfg) -> dict:
    return flatten(OmegaConf.to_container(cfg, resolve=True))


@functools.cache
def _step_in_regime(step: str, regime: str) -> MappingProxyType:
    """A step's resolved fields in a regime, from its composition shared in the test process (read-only)."""
    return MappingProxyType(_resolved(step_composed(step, regime)))

STEP_OPTIONS = options("step")
STEPS = [s.name for s in roadmap_steps()]
REGIMES = ["r50", "r200"]


def complete(*lines: str) -> list[list[str]]:
    """What bash offers for each line with Hydra's completion installed (`eval "$(python run.py -sc install=bash)"`)."""
    script = 'eval "$(python run.py -sc install=bash)"; ' + "".join(
        f'LINE={shlex.quote(line)}; COMP_LINE="$LINE"; COMP_WORDS=($LINE); COMP_CWORD=$((${{#COMP_WORDS[@]}}-1)); '
        'COMP_POINT=${#COMP_LINE}; COMPREPLY=(); hydra_bash_completion; printf "%s\\n" "${COMPREPLY[@]}" "--"; '
        for line in lines)
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=120, check=True)
    return [[w for w in block.splitlines() if w] for block in proc.stdout.split("--\n")[:-1]]


@pytest.mark.slow
def test_step_tab_offers_every_step_and_each_one_completes_a_sweep_list():
    assert any("/" in s for s in STEP_OPTIONS) and "micro/gelu" in STEP_OPTIONS
    every, one, listed, other = complete("python run.py step=", "python run.py step=micro/g",
                                         "python run.py -m step=micro/gelu,large_kernel/k1",
                                         "python run.py model.kernel_s")
    assert every == [f"step={s}" for s in STEP_OPTIONS]
    assert one == ["step=micro/gelu"]
    assert listed == ["step=micro/gelu,large_kernel/k11"]
    assert other == ["model.kernel_size="]  # every other word: Hydra's answer


@pytest.mark.parametrize("line", ["python run.py step=micro/g", "python run.py data.reso", "python run.py +sweep="])
def test_a_completion_query_imports_neither_torch_nor_timm_nor_wandb(line):
    """A Tab press answers in well under a second: the query loads Hydra and the configs, nothing heavy (checked by
    what Python imported, not by a clock)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "run.py", "-sc", "query=bash"], cwd=ROOT,
                          env=clean_env(COMP_LINE=line), capture_output=True, text=True, timeout=120, check=True)
    imported = {row.split("|")[-1].strip() for row in proc.stderr.splitlines() if row.startswith("import time:")}
    assert "hydra" in imported and not imported & {"torch", "timm", "wandb", "torchvision"}
    assert proc.stdout.strip(), proc.stderr[-2000:]  # it answered (once: Hydra's main runs once)
    assert len(proc.stdout.strip().splitlines()) == 1


@pytest.mark.parametrize("args, rc, says", [
    (["model.kernel_size=4"], 1, "model.kernel_size=4 is not allowed"),  # a bad value
    (["model.kernal_size=5"], 1, "did you mean model.kernel_size"),  # a typo
    (["step=micro/gelux"], 1, "unknown step 'micro/gelux'"),  # a group choice that does not exist
    (["--help"], 0, "python run.py step=micro/gelu"),
    (["step=micro/gelu", "--cfg", "job"], 0, "name: micro/gelu"),
    (["--cfg", "job", "schedule.epochs=5"], 1, "schedule.epochs=5 is not allowed"),  # printed only if it would run
])
def test_a_refusal_help_and_the_printed_config_import_neither_torch_nor_timm_nor_wandb(args, rc, says, tmp_path):
    """A mistyped command is answered in about a second (the config alone says what is wrong; torch, timm and W&B
    load only for a command that runs), and so are --help and --cfg: checked by what Python imported."""
    run_dir = [] if any(a.startswith("-") for a in args) else [f"hydra.run.dir={tmp_path}/run"]
    proc = subprocess.run([sys.executable, "-X", "importtime", "run.py", *args, *run_dir], cwd=ROOT, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    imported = {row.split("|")[-1].strip() for row in proc.stderr.splitlines() if row.startswith("import time:")}
    assert proc.returncode == rc and says in proc.stdout + proc.stderr, proc.stderr[-2000:]
    assert "hydra" in imported and not imported & {"torch", "timm", "wandb", "torchvision"}
    assert not (tmp_path / "run").exists()
    if rc:  # the refusal's one line (beside Python's import timings)
        assert [line for line in proc.stderr.splitlines() if not line.startswith("import time:")] == [
            line for line in proc.stderr.splitlines() if line.startswith("error: ")]



@pytest.mark.parametrize("args", [["--help"], ["step=micro/gelu", "--cfg", "job"], ["-sc", "install=bash"]])
def test_help_and_the_printed_config_end_quietly_when_their_reader_has_gone(args):
    """`python run.py --help | head -3` (or the completion's script): once head has gone, the rest is not wanted; the program ends as Unix tools
    do on SIGPIPE (status 141 in the shell), with no traceback. Here the pipe's reading end is closed at once."""
    import os
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "run.py", *args], cwd=ROOT, env=clean_env(), stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == -signal.SIGPIPE and proc.stderr == ""

def test_nested_group_paths_are_not_offered_and_other_shells_get_their_format():
    env = {"COMP_LINE": "python run.py step/micro="}
    assert nested_completions(["-sc", "query=bash"], env) == ""  # `step/micro=gelu` would fail: nothing offered
    fish = nested_completions(["-sc", "query=fish"], {"COMP_LINE": "python run.py +step=micro/f"})
    assert fish.splitlines() == ["+step=micro/fewer_acts", "+step=micro/fewer_norms"]
    assert nested_completions(["-sc", "query=bash"], {"COMP_LINE": "python run.py +sweep=r"}) is None  # flat: Hydra
    assert nested_completions(["step=micro/gelu"], {"COMP_LINE": "python run.py step="}) is None  # not a query


TABLE10 = ROOT / "tests/paper/table10_resnet50_roadmap.csv"


TABLE11 = ROOT / "tests/paper/table11_resnet200_roadmap.csv"


def test_all_table10_rows_are_steps_in_paper_order_with_the_papers_numbers():
    import csv
    rows = list(csv.DictReader(open(TABLE10)))
    metas = {s.name: s.meta for s in roadmap_steps()}
    for r in rows:
        m = metas[r["step"]]
        assert (m.label, m.order, m.paper.top1, m.paper.gflops) == (
            r["paper_row"], int(r["order"]), float(r["top1_mean"]), float(r["gflops_paper"]))
        assert m.paper.top1_std == (float(r["top1_std"]) if r["top1_std"] else None)
        assert m.adopted == ("side branch" not in r["note"])
    assert STEPS == [r["step"] for r in rows]
    assert len(STEPS) == 17


def test_all_table11_rows_are_in_the_r200_regime_with_the_papers_numbers_and_labels():
    import csv
    rows = list(csv.DictReader(open(TABLE11)))
    metas = {s.name: s.meta for s in roadmap_steps("r200")}
    assert [r["step"] for r in rows] == STEPS
    for r in rows:
        m = metas[r["step"]]
        assert (m.paper.top1, m.paper.gflops, m.order) == (float(r["top1_mean"]), float(r["gflops_paper"]),
                                                           int(r["order"]))
    assert metas["macro/stage_ratio"].label == "stage ratio and increase width"


def test_no_step_file_states_a_number_that_belongs_to_a_regime():
    for s in step_files():
        own = flatten(OmegaConf.to_container(OmegaConf.load(s.path), resolve=False))
        for key in ("model.depths", "model.base_width", "model.drop_path", "step.paper", "step.paper.top1", "step.paper.gflops"):
            assert key not in own or str(own[key]).startswith("${regime."), (s.name, key, own[key])


def test_the_regime_names_run_and_sweep_directories_and_is_in_the_record(monkeypatch):
    monkeypatch.delenv("ROADMAP_OUTPUT_DIR")  # the default, as a user gets it
    from hydra.core.hydra_config import HydraConfig

    from roadmap.config.store import register
    register()
    dirs = {}
    for regime in REGIMES:
        cfg = compose_dict("micro/gelu", [f"regime={regime}"], hydra=True)
        HydraConfig.instance().set_config(cfg)
        dirs[regime] = (cfg.hydra.run.dir, cfg.hydra.sweep.dir)
    assert dirs["r50"][0] == "outputs/runs/fashion_mnist_small/full/r50/micro/gelu/seed0"
    assert dirs["r200"] == ("outputs/runs/fashion_mnist_small/full/r200/micro/gelu/seed0",
                            "outputs/sweeps/fashion_mnist_small-full-r200")


@pytest.mark.parametrize("step", [s for s in step_files() if s.parent], ids=lambda s: s.name)
def test_a_step_differs_from_its_parent_only_in_the_fields_it_sets(step):
    own = file_fields(step.path)
    overrides_recipe = "override /recipe" in step.path.read_text()
    recipe_keys = set()
    if overrides_recipe:
        for r in (ROOT / "configs/recipe").glob("*.yaml"):
            recipe_keys |= file_fields(r)
    changed = set()  # in some regime: r50's stage-ratio step keeps the width that r200's widens
    for regime in REGIMES:
        mine, parent = (_step_in_regime(s, regime) for s in (step.name, step.parent))
        in_regime = {k for k in mine if mine[k] != parent[k] and not k.startswith("schedule.")}  # derived
        assert in_regime <= own | recipe_keys, (regime, in_regime - own - recipe_keys)
        changed |= in_regime
    model_fields = {k for k in own if k.startswith("model.")}
    assert model_fields <= changed, f"fields set to the parent's value in every regime: {model_fields - changed}"
    if step.is_alias:
        assert not changed and not own
    else:
        assert model_fields or overrides_recipe, "a step must change the network or the recipe"


def test_only_the_recipe_step_changes_the_recipe():
    recipe = {s: step_config(s).train for s in STEPS}
    assert recipe["baseline/resnet50"].opt.value == "sgd"
    assert all(recipe[s] == recipe["baseline/enhanced_recipe"] for s in STEPS[1:])
    assert recipe["baseline/enhanced_recipe"].opt.value == "adamw"


@pytest.mark.parametrize("override,pattern", [
    ("model.kernel_size=4", r"model.kernel_size=4 .*odd integer from 1 to 31"),
    ("model.kernel_size=33", r"model.kernel_size=33 .*odd integer from 1 to 31"),
    ("model.activation=swish", r"swish.*expected one of \[relu, gelu\]"),
    ("model.norm=group", r"group.*expected one of \[batch, layer\]"),
    ("model.widths=[96,192]", r"model.depths=\[3, 3, 9, 3\] .*model.widths=\[96, 192\].*one depth per width"),
    ("model.layer_scale=-1", r"model.layer_scale=-1.0 .*positive initial scale"),
    ("schedule.epochs=5", r"schedule.epochs=5 .*derived from train.\* and budget.\* \(300 here\); set budget.epochs"),
    ("step.order=3", r"step.order=3 is not allowed: no value of its own: a step's place follows from the chain"),
    ("step=micro/gelux", r"unknown step 'micro/gelux' \(did you mean micro/gelu\?\); valid step choices: .*, micro/gelu, "),
])
def test_impossible_values_fail_when_loaded_naming_field_value_and_choices(override, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        load_config("micro/gelu", [override])
    assert info.type is ValueError


@pytest.mark.slow
def test_inspect_steps_prints_every_step_and_the_erratum():
    def run(*args):
        proc = run_script(ROOT / "scripts/inspect_steps.py", *args)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout
    table = run()
    assert [line.split("|")[1].strip() for line in table.splitlines()[3:]] == STEPS
    assert "erratum" in table
    rows = json.loads(run("--json", "--resolution", "64", "--num-classes", "100"))
    assert [r["step"] for r in rows] == STEPS
    assert set(rows[0]) >= {"step", "params", "gmacs", "paper_gflops", "paper_top1"}
    resnet = describe(load_config("baseline/resnet50").model, 64, 100)
    assert (rows[0]["params"], rows[0]["gmacs"]) == (resnet[0], round(resnet[1], 4))
    table11 = run("--regime", "r200")
    assert table11.startswith("ResNet-200 to ConvNeXt-B (Table 11)") and "No paper numbers" not in table11
    lines = table11.splitlines()[3:]
    assert [line.split("|")[1].strip() for line in lines] == STEPS
    resnet200 = describe(load_config("baseline/resnet50", ["regime=r200"]).model, 224, 1000)[0]
    assert lines[0].split("|")[2].strip() == f"{resnet200:,d}" and lines[0].split("|")[6].strip() == "78.20"


def test_widths_follow_base_width_and_the_layout_and_no_step_restates_them():
    def widths(step, *overrides):
        return load_config(step, list(overrides)).model.widths
    assert widths("baseline/resnet50") == [256, 512, 1024, 2048]           # bottleneck: 4 x 64 x 2^i
    assert widths("resnextify/width") == [384, 768, 1536, 3072]            # bottleneck: 4 x 96 x 2^i
    assert widths("inverted_bottleneck/invert") == [96, 192, 384, 768]     # inverted: 96 x 2^i
    assert widths("convnext_t", "model.base_width=128") == [128, 256, 512, 1024]
    assert widths("baseline/resnet50", "model.base_width=32", "model.depths=[2,2,2]") == [128, 256, 512]
    assert widths("convnext_t", "model.widths=[10,20,30,40]") == [10, 20, 30, 40]  # explicit widths win
    assert (load_config("baseline/resnet50").model.stem_width, load_config("resnextify/width").model.stem_width) \
        == (64, 96)
    for s in step_files():
        assert flatten(OmegaConf.to_container(OmegaConf.load(s.path))).get("model.widths") is None, s.name


def test_the_full_model_is_the_last_adopted_step_and_every_adopted_step_with_changes_is_undoable():
    assert full_model() == FULL
    assert undoable(FULL) == CHAIN
    assert "baseline/enhanced_recipe" not in CHAIN and "large_kernel/k5" not in CHAIN  # recipe only; not adopted
    assert len(CHAIN) == 12


@pytest.mark.parametrize("regime", ["r50", "r200"])
@pytest.mark.parametrize("undo", CHAIN)
def test_each_variant_differs_from_the_full_model_in_exactly_the_fields_its_step_sets(regime, undo):
    variant = compose_dict(FULL, [f"regime={regime}", f"undo={undo}"])
    a, b = _step_in_regime(FULL, regime), _resolved(apply_undo(variant))
    differ = {k for k in a if k != "undo" and a[k] != b[k]}
    own = {k for k in file_fields(next(s.path for s in step_files() if s.name == undo)) if not k.startswith("step.")}
    changes = set(undo_changes(FULL, undo))
    assert differ and differ == {k for k in changes if a[k] != b[k]}
    assert differ <= own, differ - own


def test_undoing_and_typing_leave_the_composed_config_as_it_was():
    """apply_undo copies only a config with something to undo (a copy costs a tenth of a composition)."""
    from roadmap.config.compose import typed_config
    for undo in ([], ["undo=micro/gelu"]):
        cfg = compose_dict(FULL, undo)
        before = OmegaConf.to_container(cfg)
        run = typed_config(cfg)
        assert OmegaConf.to_container(cfg) == before
        assert run.model.activation.value == ("relu" if undo else "gelu")
        assert (apply_undo(cfg) is cfg) == (not undo) and OmegaConf.to_container(cfg) == before


def test_undoing_keeps_later_choices_of_a_field_unless_nothing_would_be_left_to_undo():
    r200 = load_config(FULL, ["regime=r200", "undo=macro/stage_ratio"]).model
    assert (r200.depths, r200.base_width) == ([3, 24, 36, 3], 128)  # the width step's 128 stays
    assert load_config(FULL, ["undo=resnextify/width"]).model.base_width == 64
    assert load_config(FULL, ["regime=r200", "undo=resnextify/width"]).model.base_width == 84
    # every field of the inversion is set again by move_up: undoing it returns the layout to before it
    assert load_config(FULL, ["undo=inverted_bottleneck/invert"]).model.layout.value == "bottleneck"
    assert load_config(FULL, ["undo=large_kernel/move_up"]).model.layout.value == "inverted"
    sep = load_config(FULL, ["undo=micro/separate_downsample"]).model
    assert (sep.downsample.value, sep.head_norm, sep.layer_scale) == ("in_block", False, 0.0)
    assert load_config("convnext_t", ["undo=micro/gelu"]).model.activation.value == "relu"  # through the alias


@pytest.mark.parametrize("undo,pattern", [
    ("baseline/enhanced_recipe", r"undo='baseline/enhanced_recipe' is not a step to undo in micro/separate_down"),
    ("large_kernel/k5", r"undo='large_kernel/k5' is not .* valid undo choices: macro/stage_ratio, macro/patchify"),
    ("micro/nope", r"valid undo choices: .*micro/layer_norm, micro/separate_downsample"),
])
def test_a_step_that_cannot_be_undone_is_refused_with_the_valid_ones(undo, pattern):
    with pytest.raises(ValueError, match=pattern):
        load_config(FULL, [f"undo={undo}"])
    with pytest.raises(ValueError, match=r"undo='micro/gelu' is not a step to undo in macro/patchify"):
        load_config("macro/patchify", ["undo=micro/gelu"])  # a later step is not in the network


@pytest.mark.parametrize("regime", ["r50", "r200"])
def test_the_sweep_lists_the_full_model_and_one_run_per_undoable_step_in_the_regimes_directory(regime, monkeypatch):
    monkeypatch.delenv("ROADMAP_OUTPUT_DIR")  # the default, as a user gets it
    register()
    cfg = compose_dict(None, ["+sweep=leave_one_out", f"regime={regime}"], hydra=True)
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)[0]
    assert [dict(o.split("=", 1) for o in job) for job in jobs] == \
        [{"step": FULL, "undo": u} for u in ["null", *CHAIN]]
    from hydra.core.hydra_config import HydraConfig
    HydraConfig.instance().set_config(cfg)
    assert cfg.hydra.sweep.dir == f"outputs/sweeps/fashion_mnist_small-full-{regime}-leave_one_out"


def test_every_run_of_the_sweep_is_tagged_and_an_undone_run_names_the_undone_steps_order_and_label(tmp_path):
    register()
    assert list(compose_dict(None, ["+sweep=leave_one_out"], hydra=True).wandb.tags) == ["leave_one_out"]
    full = load_config(FULL, ["+sweep=leave_one_out"])  # the full model's run: no step undone, the sweep's tag
    name, keys, tags = run_identity(full, "", RunRecord(), [], tmp_path)
    assert "leave_one_out" not in tags and full.wandb.tags == ["leave_one_out"] and keys["undo_order"] is None
    gelu = next(s for s in roadmap_steps() if s.name == "micro/gelu")
    name, keys, tags = run_identity(load_config(FULL, ["undo=micro/gelu"]), "", RunRecord(), [], tmp_path)
    assert (keys["undo_step"], keys["undo_order"], keys["undo_label"]) == ("micro/gelu", gelu.meta.order,
                                                                          gelu.meta.label)
    assert "leave_one_out" in tags and name == "r50/micro/separate_downsample/without/micro/gelu/seed0"


def test_help_says_what_the_tool_does_and_the_commands_groups_and_launchers_in_under_60_lines():
    proc = subprocess.run([sys.executable, "run.py", "--help"], cwd=ROOT, env=clean_env(), capture_output=True,
                          text=True, timeout=120, check=True)
    lines = proc.stdout.strip().splitlines()
    assert len(lines) < 60 and "powered by Hydra" not in proc.stdout
    assert lines[0].startswith("roadmap: the modernization roadmap")
    for text in ("python run.py step=micro/gelu", "-m +sweep=roadmap", "+sweep=leave_one_out", "scripts/status.py",
                 "scripts/plot_roadmap.py", "femto_converged_cpu", "step/micro: fewer_acts", "recipe_scale: paper, small",
                 "hydra/launcher=basic", "joblib", "submitit_local", "slurm", "docs/usage.md", "--hydra-help"):
        assert text in proc.stdout, text
    assert "model:" not in proc.stdout and "kernel_size: 3" not in proc.stdout  # no config dump
    hydra = subprocess.run([sys.executable, "run.py", "--hydra-help"], cwd=ROOT, env=clean_env(),
                           capture_output=True, text=True, timeout=120, check=True)
    assert "Hydra (" in hydra.stdout and "--multirun" in hydra.stdout  # Hydra's own page, as it was


@pytest.mark.parametrize("flag", [["--cfg", "job"], ["-c", "all"]])
def test_the_printed_config_says_what_runs_beside_the_recipes_nominal_values(flag):
    """`--cfg job` after a budget: schedule.* are the epochs, warm-up, milestones and learning rate that run."""
    proc = subprocess.run([sys.executable, "run.py", *flag, "budget=smoke", "step=baseline/resnet50",
                           "train.batch_size=64"], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=120, check=True)
    printed = OmegaConf.create(proc.stdout)
    assert (printed.train.epochs, printed.train.decay_milestones) == (90, [30, 60])  # the recipe's, nominal
    assert dict(printed.schedule) == {"epochs": 2, "warmup_epochs": 0.0, "decay_milestones": [1, 1],
                                      "lr": pytest.approx(0.1 * 64 / 256), "global_batch": 64}


def test_the_paths_group_places_data_and_is_not_a_variant(monkeypatch):
    monkeypatch.delenv("ROADMAP_OUTPUT_DIR")  # the default, as a user gets it
    cfg = load_config("baseline/resnet50", ["data=cifar100", "paths.data_dir=/datasets"])
    assert cfg.data.root == "/datasets/cifar100" and cfg.paths.output_dir == "outputs"
    assert load_config("baseline/resnet50", ["data=imagenet"]).data.root == "data/imagenet"
    assert variant_name(["paths.output_dir=/scratch/outputs", "paths=default", "model.kernel_size=5"]) == \
        "model.kernel_size=5"


@pytest.mark.slow
def test_paths_output_dir_moves_the_run_directory_and_names_no_variant(tmp_path):
    proc = run_cli(ROOT / "run.py", *FAST, f"paths.output_dir={tmp_path / 'out'}", check=True)
    records = list((tmp_path / "out" / "runs").rglob("metrics.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "completed", proc.stderr[-2000:]
    assert records[0].relative_to(tmp_path / "out").as_posix() == \
        f"runs/fashion_mnist_small/smoke/r50/baseline/resnet50/{variant_dir(last_wins(FAST))}seed0/metrics.json"


def beyond(bound, length: int) -> list:
    """Values just outside a bound: past each end (in the last item of a list), a list one item too long, a list
    out of order, and, for a choice, a value beside the allowed ones."""
    if bound.choices:
        return [max(bound.choices) + 1 if isinstance(bound.choices[0], int) else "bilinearx"]
    ends = [bound.low if bound.low_open else bound.low - 1] if bound.low is not None else []
    ends += [bound.high if bound.high_open else bound.high + 1] if bound.high is not None else []
    if bound.items is None:
        return ends
    low, high = bound.low if bound.low is not None else 0, bound.high if bound.high is not None else 2
    first, second = (low + 1, low + 2) if bound.whole else (low + (high - low) / 4, low + (high - low) / 2)
    n = bound.items or length  # a list of any length: as long as the one it replaces (one depth per width)
    lists = [[first] * (n - 1) + [end] for end in ends] + ([[first] * (n + 1)] if bound.items else [])
    lists += [[]] if bound.items == 0 and not bound.empty else []  # a list that must hold something
    return lists + ([[second, first] + [second] * (n - 2)] if bound.ordered else [])


def test_every_check_in_the_table_names_a_setting_and_refuses_a_value_beyond_it_in_one_line():
    """Each value given on the command line as `key=value`: parsed and applied to the composed config by Hydra's own
    code, as `compose` does after the config groups (composing it afresh for each of the 77 values took a tenth
    of the fast tier's compositions); then typed and checked as a run's config is."""
    import ast
    import copy
    import re
    from operator import attrgetter

    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    from roadmap.checks import BOUNDS
    from roadmap.config.compose import to_run_config
    composed, parser = compose_dict("baseline/resnet50"), OverridesParser.create()
    baseline = to_run_config(copy.deepcopy(composed))
    for key, bound in BOUNDS.items():
        current = attrgetter(key)(baseline)  # as checked: model.widths follow from model.base_width
        for value in beyond(bound, len(current) if isinstance(current, list) and current else 2):
            given = "[" + ",".join(map(str, value)) + "]" if isinstance(value, list) else value
            cfg = copy.deepcopy(composed)
            ConfigLoaderImpl._apply_overrides_to_config(parser.parse_overrides([f"{key}={given}"]), cfg)
            with pytest.raises(ValueError) as e:
                to_run_config(cfg)
            line = re.fullmatch(rf"{re.escape(key)}=(.+) is not allowed: (.*)", str(e.value))  # one line
            assert line and line[2] == bound.allowed, (key, value, str(e.value))
            assert ast.literal_eval(line[1]) == value, (key, value, str(e.value))  # the value as given


def test_every_value_has_one_home_the_yaml_or_the_schema():
    """compose.HOMES: a value the schema leaves MISSING is given by every file of one of its section's sets, and one
    with a default in the schema by none."""
    from roadmap.config.compose import HOMES
    from roadmap.schema import RunConfig

    def given(path) -> set:
        packaged = path.parent.name in ("regime", "data", "budget", "wandb", "paths")
        return {f"{path.parent.name}.{k}" if packaged else k for k in file_values(path)}

    schema = flatten(OmegaConf.to_container(OmegaConf.structured(RunConfig)))
    assert {k.split(".")[0] for k in schema} - {"seed", "undo", "schedule"} == set(HOMES)
    for section, homes in HOMES.items():
        sets = [[given(p) for pattern in home for p in sorted((ROOT / "configs").glob(pattern))] for home in homes]
        for key in (k for k in schema if k.startswith(section + ".")):
            gives = [[any(k == key or k.startswith(key + ".") for k in keys) for keys in files] for files in sets]
            if schema[key] == "???":
                assert any(files and all(g) for files, g in zip(sets, gives)), f"{key}: MISSING and not always given"
            else:
                assert not any(map(any, gives)), f"{key}: a default in the schema, and given in {homes}"


def test_a_data_config_without_a_value_the_schema_leaves_open_is_named_with_its_folder(tmp_path, monkeypatch):
    import shutil
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    cifar = (configs / "data/cifar10.yaml").read_text()
    (configs / "data/mine.yaml").write_text("\n".join(ln for ln in cifar.splitlines()
                                                     if not ln.startswith(("grayscale", "mean"))))
    monkeypatch.setenv("ROADMAP_CONFIG_DIR", str(configs))
    with pytest.raises(ValueError) as e:
        load_config("micro/gelu", ["data=mine"])
    assert str(e.value) == ("data.grayscale and data.mean must be set: the chosen configs leave them open (???). "
                            "Add data.grayscale=... data.mean=... to the command line, or give them in the chosen "
                            "file of configs/data/")


def _parses_under(configs: Path, monkeypatch):
    """A function that gives the files under `configs` parsed since it was last called (OmegaConf.load watched: a
    path, or a stream named by its file's path, as parsed.py reads one), by their names there."""
    parsed, load = [], OmegaConf.load
    monkeypatch.setattr(OmegaConf, "load",
                        lambda f: parsed.append(Path(f if isinstance(f, (str, Path)) else f.name)) or load(f))

    def since() -> list[str]:
        names = sorted(p.relative_to(configs).as_posix() for p in parsed if configs in p.parents)
        parsed.clear()
        return names
    return since


def test_a_config_file_is_parsed_once_per_process_and_again_once_changed_even_in_place(tmp_path, monkeypatch):
    """Hydra would parse every file of a composition at each one (src/roadmap/config/parsed.py): a second composition
    parses none of configs/, and a file changed in place, its time and size kept, is parsed again and composed."""
    import shutil
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    monkeypatch.setenv("ROADMAP_CONFIG_DIR", str(configs))
    parses = _parses_under(configs, monkeypatch)
    assert load_config("micro/gelu").model.activation.value == "gelu"
    assert {"config.yaml", "step/micro/gelu.yaml", "step/baseline/resnet50.yaml"} <= set(parses())
    assert load_config("micro/gelu").model.activation.value == "gelu" and parses() == []
    gelu = configs / "step/micro/gelu.yaml"
    before = gelu.stat()
    gelu.write_text(gelu.read_text().replace("activation: gelu", "activation: relu"))
    os.utime(gelu, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (gelu.stat().st_size, gelu.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert load_config("micro/gelu").model.activation.value == "relu" and parses() == ["step/micro/gelu.yaml"]


def test_the_steps_regimes_and_undo_read_each_config_file_once_and_change_nothing_they_share(tmp_path, monkeypatch):
    """The step files' metadata, the regimes' paper tables and what a step sets (for undo and the leave-one-out
    sweep) are read through the same parse per content of a file as Hydra's composition: asked again, nothing of
    configs/ is parsed; and after all of them, each file's kept parse is still the file as written."""
    import shutil

    from roadmap.config.parsed import parse
    from roadmap.config.steps import load_regime
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    monkeypatch.setenv("ROADMAP_CONFIG_DIR", str(configs))
    parses = _parses_under(configs, monkeypatch)

    def read_all():
        assert load_config(FULL, ["regime=r200", "undo=micro/gelu"]).model.activation.value == "relu"
        assert load_regime("femto").paper["micro/gelu"].top1 == 80.62  # Table 10's (femto's compare_with: r50)
        assert [s.name for s in roadmap_steps("r200")] == STEPS and undoable(FULL) == CHAIN
        assert undo_changes(FULL, "micro/gelu") == {"model.activation": "relu"}
        return parses()

    assert {"regime/femto.yaml", "regime/r200.yaml", "regime/r50.yaml", "step/micro/gelu.yaml"} <= set(read_all())
    assert read_all() == []
    for path in configs.rglob("*.yaml"):
        assert OmegaConf.to_container(parse(str(path))[0]) == OmegaConf.to_container(OmegaConf.load(path)), path
    gelu = configs / "step/micro/gelu.yaml"  # its metadata changed in place, its time and size kept
    before = gelu.stat()
    gelu.write_text(gelu.read_text().replace('label: "ReLU -> GELU"', 'label: "ReLU => GELU"'))
    os.utime(gelu, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (gelu.stat().st_size, gelu.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert next(s.meta.label for s in step_files() if s.name == "micro/gelu") == "ReLU => GELU"


def test_a_step_file_added_between_two_compositions_takes_its_place_in_the_second(tmp_path, monkeypatch):
    """The steps' places are kept between compositions (reading every step file is a tenth of one), and read again
    once a step file is added or changed: a user's own step over micro/gelu comes after micro/fewer_acts (the other
    step over micro/gelu, first by name), and the steps after it move one place on."""
    import shutil
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    monkeypatch.setenv("ROADMAP_CONFIG_DIR", str(configs))
    gelu = load_config("micro/gelu").step.order
    assert load_config("micro/layer_norm").step.order == gelu + 3  # fewer_acts, fewer_norms between
    (configs / "step/micro/mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - /step/micro/gelu\n  - _self_\n\n"
        "step:\n  name: micro/mine\n  label: mine\n  adopted: false\n")
    assert load_config("micro/mine").step.order == gelu + 2
    assert load_config("micro/layer_norm").step.order == gelu + 4

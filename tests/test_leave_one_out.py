"""The reverse study: what undoing a step means, the sweep's job list from the step files, and its chart."""
import csv
import json

import pytest
from conftest import FAST, ROOT, clean_env, run_cli
from wandb_log import run_info
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

from roadmap import load_config, roadmap_steps
from roadmap.compose import compose_dict, flatten
from roadmap.leave_one_out import apply_undo, full_model, undo_changes, undoable
from roadmap.report_reverse import summarize
from roadmap.steps import own_fields, step_files
from roadmap.sweep import register_resolvers
from roadmap.tracking import run_identity

FULL = "micro/separate_downsample"
# adopted steps that set fields of their own, read here from the files independently of leave_one_out.py
CHAIN = [s.name for s in roadmap_steps() if s.meta.adopted and s.meta.order > 0
         and {k for k in own_fields(s.path) if not k.startswith("step.")}]


def _resolved(cfg) -> dict:
    return flatten(OmegaConf.to_container(cfg, resolve=True))


def test_the_full_model_is_the_last_adopted_step_and_every_adopted_step_with_changes_is_undoable():
    assert full_model() == FULL
    assert undoable(FULL) == CHAIN
    assert "baseline/enhanced_recipe" not in CHAIN and "large_kernel/k5" not in CHAIN  # recipe only; not adopted
    assert len(CHAIN) == 12


@pytest.mark.parametrize("regime", ["r50", "r200"])
@pytest.mark.parametrize("undo", CHAIN)
def test_each_variant_differs_from_the_full_model_in_exactly_the_fields_its_step_sets(regime, undo):
    full = compose_dict(FULL, [f"regime={regime}"])
    variant = compose_dict(FULL, [f"regime={regime}", f"undo={undo}"])
    a, b = _resolved(full), _resolved(apply_undo(variant))
    differ = {k for k in a if k != "undo" and a[k] != b[k]}
    own = {k for k in own_fields(next(s.path for s in step_files() if s.name == undo)) if not k.startswith("step.")}
    changes = set(undo_changes(FULL, undo))
    assert differ and differ == {k for k in changes if a[k] != b[k]}
    assert differ <= own, differ - own


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
def test_the_sweep_lists_the_full_model_and_one_run_per_undoable_step_in_the_regimes_directory(regime):
    register_resolvers()
    cfg = compose_dict(None, ["+sweep=leave_one_out", f"regime={regime}"], hydra=True)
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    jobs = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(params), None)[0]
    assert [dict(o.split("=", 1) for o in job) for job in jobs] == \
        [{"step": FULL, "undo": u} for u in ["null", *CHAIN]]
    from hydra.core.hydra_config import HydraConfig
    HydraConfig.instance().set_config(cfg)
    assert cfg.hydra.sweep.dir == f"outputs/sweeps/fashion_mnist_small-full-{regime}-leave_one_out"


def test_every_run_of_the_sweep_is_tagged_and_an_undone_run_names_the_undone_steps_order_and_label(tmp_path):
    register_resolvers()
    assert list(compose_dict(None, ["+sweep=leave_one_out"], hydra=True).wandb.tags) == ["leave_one_out"]
    full = load_config(FULL, ["+sweep=leave_one_out"])  # the full model's run: no step undone, the sweep's tag
    name, keys, tags = run_identity(full, "", {}, [], tmp_path)
    assert "leave_one_out" not in tags and full.wandb.tags == ["leave_one_out"] and keys["undo_order"] is None
    gelu = next(s for s in roadmap_steps() if s.name == "micro/gelu")
    name, keys, tags = run_identity(load_config(FULL, ["undo=micro/gelu"]), "", {}, [], tmp_path)
    assert (keys["undo_step"], keys["undo_order"], keys["undo_label"]) == ("micro/gelu", gelu.meta.order,
                                                                          gelu.meta.label)
    assert "leave_one_out" in tags and name == "r50/micro/separate_downsample/without/micro/gelu/seed0"


def test_a_leave_one_out_sweep_runs_and_charts_drops_from_the_full_model(tmp_path):
    """Three of the undone steps and the full model, two seeds, one iteration each."""
    d = tmp_path / "loo"
    tiny = [*FAST, "budget.epochs=1", "budget.max_train_iters=1", "budget.max_eval_iters=1"]
    proc = run_cli(ROOT / "run.py", "-m", "+sweep=leave_one_out", "seed=0,1", *tiny, f"hydra.sweep.dir={d}",
                   "undo=null,macro/patchify,micro/gelu")
    assert proc.returncode == 0, proc.stderr[-3000:]
    recs = {p.parent.relative_to(d).as_posix(): json.loads(p.read_text()) for p in d.rglob("metrics.json")}
    assert all(rel.split("/")[-2].startswith("v-") for rel in recs)  # <step>/[without/<step>/]<variant>/seed<n>
    dirs = {rel.split("/v-")[0] for rel in recs}
    assert dirs == {FULL, f"{FULL}/without/macro/patchify", f"{FULL}/without/micro/gelu"}
    assert {(r["undo"], r["seed"], r["status"], r["regime"]) for r in recs.values()} == \
        {(u, s, "completed", "r50") for u in (None, "macro/patchify", "micro/gelu") for s in (0, 1)}
    gelu = next(rel for rel, r in recs.items() if r["undo"] == "micro/gelu")
    assert OmegaConf.load(d / gelu / "config.yaml").model.activation == "relu"
    out = tmp_path / "chart"
    env = clean_env(WANDB_MODE="offline", HOME=str(tmp_path / "home"))
    proc = run_cli(ROOT / "scripts/plot_roadmap.py", d, "--out", out, "--log-wandb", env=env, check=True)
    assert "6 completed runs over 2 of 12 undone steps and the full model, 0 failed" in proc.stdout
    (run,) = (out / "wandb").glob("offline-run-*")  # --log-wandb: the leave-one-out chart as a W&B chart run
    info = run_info(run)
    assert (info["job_type"], info["tags"]) == ("chart", ["chart", "leave_one_out"])
    assert {"leave_one_out/chart/path", "leave_one_out/table/path"} <= info["history_keys"]
    (image,) = (run / "files/media/images").rglob("*.png")
    assert image.stat().st_size > 10_000
    rows = list(csv.DictReader(open(out / "leave_one_out.csv")))
    assert [r["undo"] for r in rows] == ["", *CHAIN]  # steps without a run are shown as such
    assert [r["undo"] for r in rows if r["n"] != "0"] == ["", "macro/patchify", "micro/gelu"]
    rows = [r for r in rows if r["n"] != "0"]
    assert (out / "leave_one_out.png").stat().st_size > 10_000
    full = {r["seed"]: r["final_top1"] for r in recs.values() if r["undo"] is None}
    patch = {r["seed"]: r["final_top1"] for r in recs.values() if r["undo"] == "macro/patchify"}
    expected = sum(patch[s] - full[s] for s in (0, 1)) / 2
    assert float(rows[1]["delta"]) == pytest.approx(expected) and rows[1]["delta_method"] == "paired, n=2"


def _rec(undo, seed, top1, **kw):
    return {"step": FULL, "undo": undo, "seed": seed, "final_top1": top1, "status": "completed", "regime": "r50",
            "data": "d", "budget": "b", "variant": "", "gmacs": 1.0, "params": 1, **kw}


def test_the_reverse_table_by_hand():
    records = [_rec(None, 0, 80.0), _rec(None, 1, 81.0), _rec(None, 2, 82.0),
               _rec("micro/gelu", 0, 79.0), _rec("micro/gelu", 1, 80.2), _rec("micro/gelu", 2, 80.8),
               _rec("macro/patchify", 0, 90.0), _rec("macro/patchify", 1, None, status="failed")]
    rows, failed = summarize(records)
    by = {r["undo"]: r for r in rows}
    assert [r["undo"] for r in rows] == ["", *CHAIN]
    # differences -1.0, -0.8, -1.2: mean -1.0, sd 0.2, t(0.975, 2) = 4.303 -> half-width 4.303 * 0.2 / sqrt(3)
    g = by["micro/gelu"]
    assert g["delta"] == pytest.approx(-1.0) and g["delta_low"] == pytest.approx(-1.0 - 0.49687, abs=1e-4)
    assert g["real"] is True and g["paper_gain"] == pytest.approx(80.62 - 80.57)
    p = by["macro/patchify"]  # one run: a change without an interval
    assert p["n"] == 1 and p["failed"] == 1 and p["real"] is None and p["delta_method"] == "single run, n=1"
    assert len(failed) == 1 and by["micro/fewer_acts"]["n"] == 0
    with pytest.raises(ValueError, match="mix models, regimes"):
        summarize(records + [_rec(None, 3, 70.0, regime="r200")])

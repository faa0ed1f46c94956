"""The chart's statistics on hand-made records, checked against values computed by hand, and the chart in W&B."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CHAIN, FULL, ROOT, clean_env, run_cli, run_script
from wandb_log import run_info

from roadmap import roadmap_steps
from roadmap.analysis.leave_one_out import leave_one_out_rows
from roadmap.analysis.read import choose_variant, describe_left_out, records_from_dirs
from roadmap.analysis.roadmap import chart_roadmap
from roadmap.record import RunRecord, save_predictions

STEPS = [s.name for s in roadmap_steps()]


def write(d, step, seed, top1, group="cifar100-short", variant=""):
    path = d / f"{step.replace('/', '_')}_{variant}_{seed}"
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({
        "step": step, "seed": seed, "data": "cifar100", "budget": "short", "status": "completed",
        "final_top1": top1, "best_top1": top1, "gmacs": 0.25, "params": 1000, "images_per_s": 900.0 + seed,
        "wandb_group": group, "variant": variant}))


@pytest.fixture
def sweep(tmp_path):
    """Five adopted steps in a row, two seeds each, plus a side branch with three seeds (unequal seeds)."""
    d = tmp_path / "runs"
    values = {"large_kernel/move_up": (70.0, 71.0),     # the base
              "large_kernel/k7": (71.0, 72.0),          # +1.0 on both seeds: paired, real
              "micro/gelu": (71.0, 71.0),               # diffs 0.0 and -1.0: mean -0.5, not real
              "micro/fewer_acts": (73.0, 73.0),         # +2.0 on both seeds: real
              "micro/fewer_norms": (73.4, 73.2)}        # diffs 0.4, 0.2: mean 0.3, see below
    for step, seeds in values.items():
        for seed, v in enumerate(seeds):
            write(d, step, seed, v)
    for seed, v in enumerate((71.0, 72.0, 73.0)):     # k9 vs k7 (71, 72): unequal seeds, Welch
        write(d, "large_kernel/k9", seed, v)
    return d


def test_changes_are_paired_by_seed_with_intervals_and_marked_real_only_when_they_exclude_zero(sweep, tmp_path):
    rows, _ = chart_roadmap(records_from_dirs([sweep]), tmp_path / "out")
    by = {r.step: r for r in rows}
    k7 = by["large_kernel/k7"]  # both diffs 1.0: sd 0, interval [1, 1]
    assert (k7.delta, k7.delta_low, k7.delta_high, k7.real) == (1.0, 1.0, 1.0, True)
    assert k7.delta_method == "paired, n=2"
    gelu = by["micro/gelu"]  # diffs 0 and -1: mean -0.5, sd 0.70711, se 0.5, half-width 12.7062 * 0.5 = 6.3531
    assert gelu.delta == pytest.approx(-0.5) and gelu.real is False
    assert (gelu.delta_low, gelu.delta_high) == (pytest.approx(-6.8531, abs=1e-3), pytest.approx(5.8531, abs=1e-3))
    norms = by["micro/fewer_norms"]  # diffs 0.4, 0.2: mean 0.3, sd 0.14142, se 0.1, half-width 1.27062
    assert norms.delta == pytest.approx(0.3) and norms.real is False
    assert norms.delta_low == pytest.approx(0.3 - 1.27062, abs=1e-4)
    k9 = by["large_kernel/k9"]  # vs k7 (71, 72): means 72 vs 71.5; se^2 = 1/3 + 0.5/2 = 0.58333;
    # df = 0.58333^2 / ((1/3)^2/2 + 0.25^2/1) = 2.7931 -> 2; half-width 4.3027 * 0.76376 = 3.2862
    assert k9.delta_method == "welch, n=2" and k9.delta == pytest.approx(0.5)
    assert (k9.delta_low, k9.delta_high) == (pytest.approx(-2.7862, abs=1e-3), pytest.approx(3.7862, abs=1e-3))
    assert by["micro/fewer_acts"].real is True and by["large_kernel/move_up"].delta is None
    # the mean's own interval: move_up 70, 71: mean 70.5, se 0.5, half-width 6.3531
    assert by["large_kernel/move_up"].ci_low == pytest.approx(70.5 - 6.3531, abs=1e-3)
    assert by["large_kernel/move_up"].images_per_s == 900.5 and by["large_kernel/move_up"].gmacs == 0.25


def test_the_csv_and_markdown_tables_carry_the_same_changes_and_intervals(sweep, tmp_path):
    chart_roadmap(records_from_dirs([sweep]), tmp_path / "out")
    csv_rows = {r["step"]: r for r in csv.DictReader(open(tmp_path / "out/roadmap.csv"))}
    assert list(csv_rows) == STEPS
    assert (csv_rows["large_kernel/k7"]["real"], csv_rows["micro/gelu"]["real"], csv_rows["baseline/resnet50"]["real"]) \
        == ("True", "False", "")
    assert float(csv_rows["micro/gelu"]["delta_low"]) == pytest.approx(-6.8531, abs=1e-3)
    assert float(csv_rows["large_kernel/k7"]["paper_delta"]) == pytest.approx(0.65)
    md = (tmp_path / "out/roadmap.md").read_text()
    assert "| large_kernel/k7 | kernel size -> 7 | 2 |" in md and "| +1.00 | [+1.00, +1.00] (paired, n=2) | **yes** |" in md
    assert "| -0.50 | [-6.85, +5.85] (paired, n=2) | no |" in md


def test_agreement_with_the_paper_by_hand(sweep, tmp_path):
    rows, _ = chart_roadmap(records_from_dirs([sweep]), tmp_path / "out")
    # paper changes (Table 10): k7 80.57-79.92 = +0.65, k9 80.57-80.57 = 0 (vs k7), gelu 80.62-80.57 = +0.05,
    # fewer_acts 81.27-80.62 = +0.65, fewer_norms 81.41-81.27 = +0.14; ours: +1.0, +0.5, -0.5, +2.0, +0.3
    # signs over the 4 steps with a non-zero paper change: k7, fewer_acts, fewer_norms agree, gelu does not: 3 of 4
    # Spearman over the 5 steps in paper order (k7, k9, gelu, acts, norms): ours +1.0, +0.5, -0.5, +2.0, +0.3 ->
    # ranks 4, 3, 1, 5, 2; paper +0.65, 0.0, +0.05, +0.65, +0.14 -> ranks 4.5, 1, 2, 4.5, 3; both have mean 3;
    # deviations (1, 0, -2, 2, -1) and (1.5, -2, -1, 1.5, 0): products sum to 6.5, squares to 10 and 9.5;
    # Pearson of the ranks = 6.5 / sqrt(10 * 9.5)
    agree = next(csv.DictReader(open(tmp_path / "out/roadmap_agreement.csv")))
    assert (agree["steps"], agree["sign_agree"], agree["sign_compared"]) == ("5", "3", "4")
    assert float(agree["sign_agreement"]) == pytest.approx(0.75)
    assert float(agree["spearman"]) == pytest.approx(6.5 / (10 * 9.5) ** 0.5)
    md = (tmp_path / "out/roadmap.md").read_text()
    assert "over the 5 steps where both changes exist: the sign agrees on 3 of 4, Spearman's rank correlation " \
           f"{6.5 / (10 * 9.5) ** 0.5:+.2f}." in md


def test_a_side_sweep_into_the_roadmaps_folder_is_left_out_of_its_chart_and_named(sweep, tmp_path):
    """`-m step=micro/gelu model.kernel_size=5` into the same sweep folder: the roadmap's chart stays as it was, says
    what it left out, and --variant charts the side sweep instead."""
    alone, _ = chart_roadmap(records_from_dirs([sweep]), tmp_path / "alone")
    for seed, v in enumerate((60.0, 61.0)):
        write(sweep, "micro/gelu", seed, v, variant="model.kernel_size=5")
    records, variant, left = choose_variant(records_from_dirs([sweep]))
    assert variant == "" and [len(runs) for runs in left.values()] == [2]
    mixed, _ = chart_roadmap(records, tmp_path / "mixed", notes=describe_left_out(left))
    assert [(r.step, r.mean, r.delta) for r in mixed] == [(r.step, r.mean, r.delta) for r in alone]
    md = (tmp_path / "mixed/roadmap.md").read_text()
    assert "left out 2 run(s) of variant 'model.kernel_size=5' (micro/gelu); chart them with --variant " \
           "model.kernel_size=5" in md
    proc = run_cli(ROOT / "scripts/plot_roadmap.py", sweep, "--out", tmp_path / "cli", check=True)
    assert "left out 2 run(s) of variant 'model.kernel_size=5'" in proc.stdout
    side = run_cli(ROOT / "scripts/plot_roadmap.py", sweep, "--out", tmp_path / "side", "--variant",
                   "model.kernel_size=5", check=True)
    by = {r["step"]: r for r in csv.DictReader(open(tmp_path / "side/roadmap.csv"))}
    assert by["micro/gelu"]["mean"] == "60.5" and by["large_kernel/k7"]["n"] == "0"
    assert "left out 13 run(s) of variant ''" in side.stdout
    bad = run_cli(ROOT / "scripts/plot_roadmap.py", sweep, "--out", tmp_path / "bad", "--variant", "model.x=1")
    assert bad.returncode == 1 and bad.stderr.strip().splitlines() == [
        "error: --variant 'model.x=1' is not among these records' variants: ''; 'model.kernel_size=5'"]
    assert not (tmp_path / "bad").exists()


def test_the_variant_covering_most_steps_is_charted_whatever_its_name(tmp_path):
    """A whole roadmap swept with an override (every run's variant 'model.stem_stride=2'), and one step as it is:
    the roadmap's own variant is the one with the most steps; on a tie, the steps as they are."""
    for step in STEPS[:3]:
        write(tmp_path, step, 0, 70.0, variant="model.stem_stride=2")
    write(tmp_path, STEPS[0], 0, 50.0)
    records, variant, left = choose_variant(records_from_dirs([tmp_path]))
    assert variant == "model.stem_stride=2" and len(records) == 3 and list(left) == [""]
    write(tmp_path, STEPS[1], 0, 50.0)
    write(tmp_path, STEPS[2], 0, 50.0)
    assert choose_variant(records_from_dirs([tmp_path]))[1] == ""


def test_log_wandb_puts_the_chart_and_a_row_per_step_in_one_chart_run_of_the_sweeps_group(sweep, tmp_path):
    out = tmp_path / "out"
    env = clean_env(WANDB_MODE="offline", HOME=str(tmp_path / "home"))
    proc = run_cli(ROOT / "scripts/plot_roadmap.py", sweep, "--out", out, "--log-wandb", env=env, check=True)
    assert "W&B chart run in group cifar100-short" in proc.stdout
    (run,) = (out / "wandb").glob("offline-run-*")
    info = run_info(run)
    assert (info["job_type"], info["group"], info["tags"]) == ("chart", "cifar100-short", ["chart"])
    assert {"roadmap/chart/path", "roadmap/table/path", "roadmap/top1_table/path"} <= info["history_keys"]
    (table,) = (run / "files/media/table").rglob("*.table.json")
    data = json.loads(table.read_text())
    assert len(data["data"]) == len(STEPS) and "real" in data["columns"] and "delta_low" in data["columns"]
    steps = [row[data["columns"].index("step")] for row in data["data"]]
    assert steps == STEPS
    (image,) = (run / "files/media/images").rglob("*.png")
    assert image.read_bytes()[:4] == b"\x89PNG" and image.stat().st_size > 10_000


def test_collect_results_copies_completed_runs_only_and_only_once(tmp_path):
    """The small files of each completed run, never its checkpoint; a running or damaged run is named and left."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("collect_results", ROOT / "scripts/collect_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sweep, dest = tmp_path / "sweep", tmp_path / "dest"
    for name, status in (("a/seed0", "completed"), ("a/seed1", "running"), ("b/seed0", "completed")):
        run = sweep / name
        run.mkdir(parents=True)
        (run / "metrics.json").write_text(json.dumps({"status": status}))
        for f in ("config.yaml", "overrides.yaml", "checkpoint.pt"):
            (run / f).write_text(f)
        save_predictions(np.arange(10) % 3, np.arange(10) % 3, run / "predictions.npz")
    (sweep / "c/seed0").mkdir(parents=True)
    (sweep / "c/seed0/metrics.json").write_text("{trunc")
    added, left = mod.collect(sweep, dest)
    assert sorted(p.relative_to(dest).as_posix() for p in added) == ["a/seed0", "b/seed0"]
    assert sorted((r.relative_to(sweep).as_posix(), why) for r, why in left) == [
        ("a/seed1", "running"), ("c/seed0", "unreadable (JSONDecodeError)")]
    assert sorted(p.name for p in (dest / "a/seed0").iterdir()) == sorted(mod.FILES)  # no checkpoint
    assert mod.collect(sweep, dest)[0] == []  # nothing changed: nothing copied
    (sweep / "b/seed0/metrics.json").write_text(json.dumps({"status": "completed", "final_top1": 1.0}))
    assert [p.relative_to(dest).as_posix() for p in mod.collect(sweep, dest)[0]] == ["b/seed0"]


def _rec(undo, seed, top1, **kw):
    return RunRecord(**{"step": FULL, "undo": undo, "seed": seed, "final_top1": top1, "status": "completed",
                        "regime": "r50", "data": "d", "budget": "b", "variant": "", "gmacs": 1.0, "params": 1, **kw})


def test_the_leave_one_out_table_by_hand():
    records = [_rec(None, 0, 80.0), _rec(None, 1, 81.0), _rec(None, 2, 82.0),
               _rec("micro/gelu", 0, 79.0), _rec("micro/gelu", 1, 80.2), _rec("micro/gelu", 2, 80.8),
               _rec("macro/patchify", 0, 90.0), _rec("macro/patchify", 1, None, status="failed")]
    rows, failed = leave_one_out_rows(records)
    by = {r.undo: r for r in rows}
    assert [r.undo for r in rows] == ["", *CHAIN]
    # differences -1.0, -0.8, -1.2: mean -1.0, sd 0.2, t(0.975, 2) = 4.303 -> half-width 4.303 * 0.2 / sqrt(3)
    g = by["micro/gelu"]
    assert g.delta == pytest.approx(-1.0) and g.delta_low == pytest.approx(-1.0 - 0.49687, abs=1e-4)
    assert g.real is True and g.paper_gain == pytest.approx(80.62 - 80.57)
    p = by["macro/patchify"]  # one run: a change without an interval
    assert p.n == 1 and p.failed == 1 and p.real is None and p.delta_method == "single run, n=1"
    assert len(failed) == 1 and by["micro/fewer_acts"].n == 0
    with pytest.raises(ValueError, match="mix models, regimes"):
        leave_one_out_rows(records + [_rec(None, 3, 70.0, regime="r200")])


RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


STUDIES = sorted(p.parent for p in RESULTS.glob("*/roadmap.csv"))


def test_there_are_committed_results():
    assert STUDIES, f"no study with a roadmap.csv under {RESULTS}"


@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_plot_roadmap_on_the_committed_records_reproduces_the_committed_tables(study, tmp_path):
    records = records_from_dirs([study / "runs"])
    assert records and all(r.status == "completed" for r in records)  # only completed runs are committed
    chart_roadmap(records, tmp_path)
    for name in ("roadmap.csv", "roadmap_agreement.csv"):
        assert (tmp_path / name).read_text() == (study / name).read_text(), name


@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_every_committed_record_loads_as_a_run_record_and_writes_back_what_it_held(study):
    """Records written before RunRecord (and before fields such as pipeline_probe) load, and to_dict gives back
    every key and value of the file; fields the file did not have come back empty."""
    paths = sorted((study / "runs").rglob("metrics.json"))
    assert paths
    for path in paths:
        held = json.loads(path.read_text())
        again = RunRecord.load(path).to_dict()
        assert {k: again[k] for k in held} == held, path
        assert all(again[k] in (None, []) for k in set(again) - set(held)), path


def test_the_learning_curves_are_each_steps_top1_per_epoch_averaged_over_its_seeds(tmp_path):
    """By hand: two seeds of two steps, three epochs each; a failed run and a run of another variant stay out."""
    from roadmap.record import EpochRow
    curves = {("baseline/resnet50", 0): [50.0, 60.0, 70.0], ("baseline/resnet50", 1): [52.0, 64.0, 72.0],
              ("macro/stage_ratio", 0): [40.0, 70.0, 80.0], ("macro/stage_ratio", 1): [44.0, 72.0, 78.0]}
    records = [RunRecord(step=step, seed=seed, status="completed", regime="r50", data="d", budget="b", variant="",
                         gmacs=1.0, params=1, history=[EpochRow(epoch=i, train_loss=1.0, val_top1=v, val_top5=99.0,
                                                                lr=0.1, images_per_s=1.0) for i, v in enumerate(top1)]
                         ).summarize() for (step, seed), top1 in curves.items()]
    records.append(RunRecord(step="macro/stage_ratio", seed=2, status="failed", regime="r50", data="d", budget="b",
                             history=[EpochRow(epoch=0, train_loss=1.0, val_top1=0.0, val_top5=0.0, lr=0.1,
                                               images_per_s=1.0)]))
    chart_roadmap(records, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "curves.csv")))
    got = {(r["step"], int(r["epoch"])): (int(r["n"]), float(r["mean"]), float(r["min"]), float(r["max"]))
           for r in rows}
    assert got == {("baseline/resnet50", 1): (2, 51.0, 50.0, 52.0), ("baseline/resnet50", 2): (2, 62.0, 60.0, 64.0),
                   ("baseline/resnet50", 3): (2, 71.0, 70.0, 72.0), ("macro/stage_ratio", 1): (2, 42.0, 40.0, 44.0),
                   ("macro/stage_ratio", 2): (2, 71.0, 70.0, 72.0), ("macro/stage_ratio", 3): (2, 79.0, 78.0, 80.0)}
    assert (tmp_path / "curves.png").stat().st_size > 10_000


def test_the_curves_have_a_panel_per_stage_each_beside_the_last_adopted_step_before_it():
    from roadmap.analysis.curves import CurvePoint, panels
    steps = ["baseline/resnet50", "baseline/enhanced_recipe", "macro/patchify", "large_kernel/k7", "large_kernel/k9",
             "micro/gelu", "mine"]
    rows = [CurvePoint(step, step.upper(), epoch, 1, 50.0, 50.0, 50.0) for step in steps for epoch in (1, 2)]
    named = lambda *names: [(n, n.upper()) for n in names]  # noqa: E731
    assert panels(rows, side={"large_kernel/k9"}) == [
        ("baseline", None, named("baseline/resnet50", "baseline/enhanced_recipe")),
        ("macro", ("baseline/enhanced_recipe", "BASELINE/ENHANCED_RECIPE"), named("macro/patchify")),
        ("large_kernel", ("macro/patchify", "MACRO/PATCHIFY"), named("large_kernel/k7", "large_kernel/k9")),
        ("micro", ("large_kernel/k7", "LARGE_KERNEL/K7"), named("micro/gelu")),  # not the side branch k9
        ("mine", ("micro/gelu", "MICRO/GELU"), named("mine"))]


def test_compare_studies_sets_each_steps_change_in_one_study_beside_the_other(tmp_path):
    """Two charts' roadmap.csv by hand: a change that keeps its sign, one that flips while real in both."""
    header = ("step,label,n,mean,std,ci_low,ci_high,min,max,gmacs,params,images_per_s,paper_top1,paper_gflops,"
              "adopted,delta,delta_low,delta_high,delta_method,real,boot_low,boot_high,boot_n,boot_real,paper_delta,"
              "failed")
    rows = {"a": [("baseline/resnet50", 70, "", "", "", ""), ("macro/stage_ratio", 72, 2.0, 1.0, 3.0, True),
                  ("macro/patchify", 71, -1.0, -2.0, -0.5, True)],
            "b": [("baseline/resnet50", 90, "", "", "", ""), ("macro/stage_ratio", 91, 1.0, -1.0, 3.0, False),
                  ("macro/patchify", 92, 1.0, 0.5, 1.5, True)]}
    for name, lines in rows.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "roadmap.csv").write_text("\n".join(
            [header] + [f"{s},{s},3,{m},,,,,,,,,,,True,{d},{lo},{hi},,{real},,,,,0.5,0" for s, m, d, lo, hi, real
                        in lines]) + "\n")
    proc = run_cli(ROOT / "scripts/compare_studies.py", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "out",
                   "--names", "short", "long", check=True)
    assert "3 steps compared" in proc.stdout
    out = {r["step"]: r for r in csv.DictReader(open(tmp_path / "out/compare.csv"))}
    assert (out["macro/stage_ratio"]["same_sign"], out["macro/stage_ratio"]["flipped"]) == ("True", "False")
    assert (out["macro/patchify"]["same_sign"], out["macro/patchify"]["flipped"]) == ("False", "True")
    md = (tmp_path / "out/compare.md").read_text()
    assert "agree in sign on 1 of 2 steps" in md and "the recipe reverses): macro/patchify." in md
    svg = (tmp_path / "out/compare.svg").read_text()  # matplotlib keeps each text as a comment beside its glyphs
    assert all(f"<!-- {name} -->" in svg for name in ("short", "long", "paper (ImageNet-1K)"))  # the legend


def test_status_shows_a_sweeps_table_what_runs_with_its_time_left_and_what_failed_and_why(tmp_path):
    from roadmap.train.lock import RunLock
    sweep = tmp_path / "sweep"

    def record(rel, **fields):
        (sweep / rel).mkdir(parents=True)
        base = {"step": rel.split("/seed")[0], "seed": int(rel[-1]), "variant": "", "regime": "femto", "data": "d",
                "budget": "b", "epochs": 4, "status": "completed"}
        (sweep / rel / "metrics.json").write_text(json.dumps(base | fields))
    row = {"train_loss": 1.0, "val_top5": 99.0, "lr": 0.1, "images_per_s": 1.0, "epoch_time_s": 600.0}
    record("baseline/resnet50/seed0", final_top1=90.0, best_top1=90.0, epochs_done=4, wall_time_s=1800.0)
    record("baseline/resnet50/seed1", final_top1=92.0, best_top1=92.0, epochs_done=4, wall_time_s=2730.0)
    record("micro/gelu/seed0", status="running", epochs_done=1, history=[row | {"epoch": 0, "val_top1": 50.0}],
           wall_time_s=600.0)  # not completed: not in the sum
    record("micro/gelu/seed1", status="failed", reason="NonFiniteLoss: the loss is nan")
    record("micro/gelu/seed2", status="running", epochs_done=0)
    (sweep / "micro/gelu/seed2/.lock").write_text("{}")  # left by a process that died: no one holds it, killed
    with RunLock(sweep / "micro/gelu/seed0"):
        proc = run_cli(ROOT / "scripts/status.py", sweep, "--csv", tmp_path / "t.csv", check=True)
    out = proc.stdout
    assert "baseline/resnet50" in out and "91.0" in out and "2 completed" in out
    assert "micro/gelu/seed0: epoch 1 of 4 done, about 0:30:00 left" in out
    assert "failed: " in out and "the loss is nan" in out and "killed: " in out
    assert "5 run(s): 2 completed, 1 running, 2 other; the completed runs' epochs took 1:15:30 (h:mm:ss)" in out
    rows = {r["step"]: r for r in csv.DictReader(open(tmp_path / "t.csv"))}
    assert rows["baseline/resnet50"]["mean_final_top1"] == "91.0" and rows["micro/gelu"]["completed"] == "0"


@pytest.mark.parametrize("study", ["femto_cpu", "femto_converged"])
def test_the_committed_records_reproduce_the_committed_tables_byte_for_byte(study, tmp_path):
    """docs/results/<study>: the chart's tables, made again from the committed runs as its page says."""
    folder = ROOT / "docs" / "results" / study
    tables = [name for name in ("roadmap.csv", "roadmap_agreement.csv", "roadmap.md", "curves.csv")
              if (folder / name).exists()]
    assert {"roadmap.csv", "roadmap_agreement.csv", "roadmap.md"} <= set(tables), tables  # curves.csv: since femto_converged
    proc = run_script(ROOT / "scripts/plot_roadmap.py", folder / "runs", "--out", tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in tables:
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name


def test_the_converged_studys_comparison_with_the_transplanted_recipe_is_made_again_byte_for_byte(tmp_path):
    """docs/results/femto_converged/compare.*: each step's change under the 3-epoch transplanted recipe beside its
    change under the converged small-scale one, remade from the two studies' committed tables as the page says."""
    folder = ROOT / "docs/results/femto_converged"
    proc = run_script(ROOT / "scripts/compare_studies.py", ROOT / "docs/results/femto_cpu", folder, "--out", tmp_path,
                      "--names", "3 epochs, transplanted", "converged, small-scale")
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("compare.csv", "compare.md"):
        assert (tmp_path / name).read_bytes() == (folder / name).read_bytes(), name

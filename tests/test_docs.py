"""Every command that the README, the docs pages and the scripts' --help texts show is run here in its documented form,
scaled down by what is appended to it (the last value of a setting wins): two iterations of one epoch at batch 16, two
steps and two seeds of a sweep, two steps where a benchmark names `--steps all`, tiny benchmark windows; each page (or
--help text) is one test, its commands in order, each distinct one once. Never the network, the loader, the pipeline,
the launcher, the threads or W&B: `test_a_scaled_command_changes_only_its_scale` fails if anything else is appended.
Nothing else is changed but for these substitutions: a dataset that cannot be had offline (cifar100, cifar10, imagenet, the full
Fashion-MNIST) becomes the shipped one, in the command and in the sweep folder it names (that the documented choice
composes is checked apart); placeholders (SWEEP_DIR, "$OUT", ENTITY/PROJECT, a.json) get real values. A command this
file cannot run fails the test, so no documented command can drift from what works. The scripts run in the test's
process, as Python runs them (conftest.run_script: __main__, their argv, folder and environment), sparing the start-up
that costs more than their scaled work; run.py and torchrun run as processes: the README's quick start fresh, as a new
user starts it, run.py's other commands warm (tests/warm.py: forked from a process that has imported torch, timm and
Hydra; tests/test_warm.py checks that a warm run and a fresh one agree)."""
import ast
import functools
import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, clean_env, last_wins, run_cli, run_script
from omegaconf import OmegaConf

from roadmap.config.compose import compose_dict
from roadmap.data.pipelines import CHOICES
from roadmap.record import RunRecord, save_predictions

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
HELP = ROOT / "configs/hydra/help/roadmap.yaml"  # run.py --help
SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))
PROGRAMS = ("python ", "torchrun ", "bash ", "HF_HUB_OFFLINE=1 ")
OFFLINE = {"cifar100": "fashion_mnist_small", "cifar10": "fashion_mnist_small", "imagenet": "fashion_mnist_small",
           "fashion_mnist": "fashion_mnist_small"}
TINY = ["budget.epochs=1", "budget.max_train_iters=2", "budget.max_eval_iters=1", "train.batch_size=16"]
# what a scaled run.py command may append: its scale (epochs, iterations, batch, the dataset's size) and, for a sweep,
# fewer of its own steps, seeds and undone steps
SCALE = {"budget.epochs", "budget.max_train_iters", "budget.max_eval_iters", "train.batch_size", "data",
         "data.val_split"}
SWEEP_SCALE = {"step", "seed", "undo"}
GPU_CHECK_TEST = (ROOT / "tests/test_gpu_check.py").read_text()
BENCH_TINY = ["--resolution", "32", "--batch-size", "2", "--warmup", "1", "--windows", "1", "--iters", "1",
              "--workers", "1"]


def _commands_in(text: str) -> list[str]:
    """Shell lines of ```bash blocks (continuations joined) and inline `python ...` spans of a markdown page."""
    out = []
    for block in re.findall(r"```(?:bash|sh)\n(.*?)```", text, re.S):
        out += [line.strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    out += re.findall(r"(?<!`)`((?:python|torchrun|bash) [^`]+)`", text)
    return out


def _header_commands(path: Path) -> list[str]:
    """The commands in a config file's comments (`#   python run.py ...`, a trailing backslash continuing one)."""
    out, pending = [], ""
    for line in path.read_text().splitlines():
        text = line.lstrip("# ").rstrip() if line.startswith("#") else ""
        if pending:
            pending += " " + text.rstrip("\\").strip()
        elif text.startswith(PROGRAMS):
            pending = text.rstrip("\\").strip()
        if pending and not text.endswith("\\"):
            out.append(pending)
            pending = ""
    return out


def documented() -> list[tuple[str, str]]:
    """(where, command) for every command shown in the docs, the scripts' --help texts (their docstrings), run.py's
    --help (its template, the sweep folder written <sweep>) and the config files' headers."""
    found = [(p.name, c) for p in PAGES for c in _commands_in(p.read_text())]
    for script in SCRIPTS:
        doc = ast.get_docstring(ast.parse(script.read_text())) or ""
        found += [(f"{script.name} --help", line.strip()) for line in doc.splitlines()
                  if line.strip().startswith(PROGRAMS)]
    template = OmegaConf.to_container(OmegaConf.load(HELP))["template"]  # unresolved: ${hydra.help.header}
    found += [("run.py --help", re.split(r"\s{2,}", line.strip())[0].replace("outputs/sweeps/<sweep>", "SWEEP_DIR"))
              for line in template.splitlines() if line.strip().startswith(PROGRAMS)]
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        found += [(f"configs/{path.relative_to(ROOT / 'configs')}", c) for c in _header_commands(path)]
    return list(dict.fromkeys(found))


def pattern(command: str) -> bool:
    """A usage pattern rather than a command: `...`, `[--option VALUE]`, `N` for a number (comments aside)."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError:
        return True
    return any(w == "..." or w.endswith(",...") or w.startswith("[--") or w == "--nproc_per_node=N" for w in words)


def segments(command: str) -> list[list[str]]:
    """The command's parts (split at &&, ; and &: here they run one after another), each as argv, comments
    dropped; setup parts (venv, pip, activate) and the checks themselves (ruff, pytest: .ci/run runs them) left
    out."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words, parts = list(lexer), [[]]
    for w in words:
        parts.append([]) if w in ("&&", ";", "&") else parts[-1].append(w)
    out = []
    for argv in parts:
        while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]):
            argv = argv[1:]  # HF_HUB_OFFLINE=1: the tests run with it set
        if not argv or argv[0] in (".", "source", "pip", "ruff") or argv[:3] in (["python3", "-m", "venv"],
                                                                        ["python", "-m", "pytest"]):
            continue
        out.append(argv)
    return out


@functools.cache
def quick_start() -> set[str]:
    """The README's quick-start commands of run.py, which run fresh (a new python importing torch, timm and Hydra), as
    a new user starts them; run.py's other documented commands start warm (tests/warm.py)."""
    section = re.search(r"## Quick start\n(.*?)\n## ", (ROOT / "README.md").read_text(), re.S).group(1)
    return {shlex.join(argv) for command in _commands_in(section) for argv in segments(command) if "run.py" in argv}


def offline(value: str) -> str:
    for name, local in OFFLINE.items():
        value = re.sub(rf"(?<![\w]){name}(?=-|$)", local, value)
    return value


def scaled_run(args: list[str]) -> list[str]:
    """run.py's arguments, scaled down: TINY, the shipped data for a femto profile (a tenth of the held-out images
    where the profile holds some out), two steps of a sweep that names none, and every swept list cut to two."""
    args = [f"data={OFFLINE.get(a[5:], a[5:])}" if a.startswith("data=") else a for a in args]
    extra = list(TINY)
    sweep = "-m" in args or "--multirun" in args
    given = {a.split("=", 1)[0].lstrip("+") for a in args if "=" in a}
    femto = any(a.startswith("+experiment=femto") for a in args)
    if femto:
        extra.append("data=fashion_mnist_small")
    if any(a.startswith(("+experiment=femto_search", "+experiment=femto_probe")) for a in args):
        extra.append("data.val_split=500")  # of the shipped 5,000 (the profile holds out 5,000 of 60,000)
    if sweep and "step" not in given and (femto or "+sweep=roadmap" in args):
        extra.append("step=baseline/resnet50,macro/stage_ratio")
    if sweep and femto and "seed" not in given:
        extra.append("seed=0")
    if "+sweep=leave_one_out" in args:
        extra.append("undo=null,micro/gelu")
    for a in args:  # a sweep's own lists: its first two values
        key, _, value = a.partition("=")
        if sweep and "," in value and "$" not in value and "(" not in value and len(value.split(",")) > 2:
            extra.append(f"{key}={','.join(value.split(',')[:2])}")
    if any(a.startswith("hydra/launcher=slurm") for a in args):  # no SLURM here: one job's launcher config is checked
        return [a.split(",")[0] for a in args if a not in ("-m", "--multirun")] + ["--cfg", "hydra"]
    if "--cfg" in args:
        return args
    return args + extra


def beyond_scale(printed: list[str], scaled: list[str]) -> list[str]:
    """What the scaled form of a run.py command changes besides its scale (SCALE; fewer steps, seeds and undone steps
    of a sweep, within those it names): [] when nothing."""
    base = [f"data={OFFLINE.get(a[5:], a[5:])}" if a.startswith("data=") else a for a in printed]
    if scaled[:len(base)] != base:
        return ["the printed arguments themselves changed"]
    named = {a.split("=", 1)[0]: set(a.split("=", 1)[1].split(",")) for a in printed if "=" in a}
    sweep = "-m" in printed or "--multirun" in printed
    wrong = []
    for a in scaled[len(base):]:
        k, _, v = a.partition("=")
        if k == "data" and v not in OFFLINE.values():
            wrong.append(a)
        elif k not in SCALE and not (sweep and (k in SWEEP_SCALE or len(named.get(k, ())) > 1)
                                     and set(v.split(",")) <= named.get(k, set(v.split(",")))):
            wrong.append(a)
    return wrong


class Runner:
    """Runs documented commands in one scratch folder, in the order the docs give them (a sweep, then its chart)."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.sweep_dir = cwd / "SWEEP_DIR"
        self.measured: list[str] = []
        # the page's runs and sweeps in a folder of the page's (paths.output_dir), under its tmp_path, which pytest
        # removes once the page passes (pyproject: tmp_path_retention_policy); data.pipeline=auto's choice kept in
        # the test process's own folder is carried in, so a page measures no more than it did
        self.output = cwd / "page-outputs"

    def argv(self, argv: list[str]) -> tuple[list, dict]:
        """(the command to run, what to expect: {"rc": code, "stderr": text it must contain})."""
        env_expect = {"rc": 0}
        if argv[0] == "torchrun":  # two CPU processes (gloo) stand for the documented GPUs
            i = argv.index("run.py")
            flags = [a for a in argv[1:i] if not a.startswith("--nproc_per_node")]
            return ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", *flags,
                     ROOT / "run.py", *scaled_run(argv[i + 1:])], env_expect)
        if argv[:2] == ["bash", "scripts/gpu_check.sh"]:  # run with --tiny by tests/test_gpu_check.py
            assert "scripts/gpu_check.sh" in GPU_CHECK_TEST and "--tiny" in GPU_CHECK_TEST
            return [], {"elsewhere": "tests/test_gpu_check.py"}
        assert argv[0] == "python", argv
        script, args = argv[1], argv[2:]
        if script == "run.py":
            slurm = any(a.startswith("hydra/launcher=slurm") for a in args)
            return [sys.executable, ROOT / "run.py", *scaled_run(args)], \
                {"rc": 0, "stdout": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"} \
                if slurm else env_expect
        args = [offline(a) for a in args]
        if script == "scripts/plot_roadmap.py":
            if "--wandb" in args:  # no W&B account here: the documented one-line answer
                return [sys.executable, ROOT / script, *args], {"rc": 1, "stderr": "wandb login"}
            return [sys.executable, ROOT / script, *args], env_expect
        if script == "scripts/benchmark.py":
            if "--data-root" in args and args[args.index("--data") + 1] == "fashion_mnist_small":
                i = args.index("--data-root")  # the documented dataset's own files: not here, and not needed
                args = args[:i] + args[i + 2:]
            if "--steps" not in args:
                steps = ["--steps", "micro/separate_downsample"]
            elif "all" in args:  # every step becomes two (the last --steps wins)
                steps = ["--steps", "baseline/resnet50", "micro/separate_downsample"]
            else:
                steps = []
            if "--compile" in args or "compile" in args:  # one compile of one model is what the CPU can afford
                steps = ["--steps", "micro/separate_downsample"]
                args = [a for a in args if a != "--reference"]
            return [sys.executable, ROOT / script, *args, *steps, *BENCH_TINY, "--out",
                    self.cwd / "bench"], env_expect
        if script == "scripts/measure_study.py":
            if "--estimate" in args:
                i = args.index("--estimate")
                files = [a for a in args[i + 1:] if a.endswith(".json")]
                rest = [a for a in args[i + 1:] if not a.endswith(".json")]
                return [sys.executable, ROOT / script, *args[:i], "--estimate",
                        *(self.measured * len(files))[:len(files)], *rest], env_expect
            return [sys.executable, ROOT / script, *args, *TINY[3:], "--steps", "baseline/resnet50", "--iters", "1",
                    "--warmup", "1", "--eval-batches", "1", "--out", "MEASURED"], env_expect
        if script in ("scripts/collect_results.py", "scripts/inspect_steps.py", "scripts/compare_studies.py",
                      "scripts/status.py"):
            return [sys.executable, ROOT / script, *args], env_expect
        raise AssertionError(f"no way to run the documented command {shlex.join(argv)}: teach tests/test_docs.py")

    def run(self, where: str, argv: list[str]) -> None:
        cmd, expect = self.argv(argv)
        if "elsewhere" in expect:
            return
        t0 = time.perf_counter()
        cmd = [str(self.sweep_dir) if a == "SWEEP_DIR" else str(a) for a in cmd]
        if Path(cmd[1]).name in ("plot_roadmap.py", "collect_results.py", "status.py") and not cmd[2].startswith("-"):
            if not (self.cwd / cmd[2]).exists():  # its sweep (or copy) is run on the page that shows it first
                make_sweep_dir(self.cwd / cmd[2])
        if Path(cmd[1]).name == "compare_studies.py":  # two charts' folders: charted from hand-made records
            for folder in cmd[2:4]:
                if not (self.cwd / folder / "roadmap.csv").exists():
                    make_sweep_dir(self.cwd / "records" / folder)
                    run_script(ROOT / "scripts/plot_roadmap.py", self.cwd / "records" / folder, "--out",
                               self.cwd / folder, cwd=self.cwd)
        if "MEASURED" in cmd:  # measure_study's output, for the --estimate commands after it
            self.measured.append(str(self.cwd / f"measure{len(self.measured)}.json"))
            cmd[cmd.index("MEASURED")] = self.measured[-1]
        if not self.output.exists():
            self.output.mkdir(parents=True)
            kept = Path(os.environ["ROADMAP_OUTPUT_DIR"]) / CHOICES
            if kept.is_file():
                shutil.copy(kept, self.output / CHOICES)
        env = clean_env(WANDB_MODE="offline", HOME=str(self.cwd / "home"), ROADMAP_OUTPUT_DIR=str(self.output))
        if Path(cmd[1]).parent == ROOT / "scripts":  # a script: in this process
            proc = run_script(*cmd[1:], cwd=self.cwd, env=env)
        else:  # run.py and torchrun (python -m torch.distributed.run): processes; the quick start's fresh, as a new
            # user starts it, run.py's others warm (tests/warm.py: forked from a process with their modules imported)
            proc = run_cli(*cmd[1:], cwd=self.cwd, env=env, timeout=900, fresh=shlex.join(argv) in quick_start())
        assert proc.returncode == expect["rc"], \
            f"{where}: {shlex.join(argv)}\nran as {shlex.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        if "stderr" in expect:
            assert expect["stderr"] in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
        if "stdout" in expect:
            assert expect["stdout"] in proc.stdout, proc.stdout
        print(f"{time.perf_counter() - t0:6.1f} s  {where}: {shlex.join(argv)}")
        self.drop_checkpoints_of_completed_runs()

    def drop_checkpoints_of_completed_runs(self) -> None:
        """What `system.keep_checkpoint=false` does (a completed run's command, run again, finds its record and has
        nothing to do either way): a page's full-size networks keep some 300 MB each, and the README's commands
        alone kept 3.5 GB, all written under /tmp while the other pages ran beside them."""
        for record in self.output.rglob("metrics.json"):
            if (RunRecord.read(record) or RunRecord(status="none")).status == "completed":
                (record.parent / "checkpoint.pt").unlink(missing_ok=True)


def shape(cmd: list) -> tuple:
    """What a scaled command runs, for running each once: its words with every `--flag value` once (the last, as
    argparse takes it) and --out left out, since the scaled form sets its own sizes and folders."""
    words, flags, i = [], {}, 0
    while i < len(cmd):
        w = str(cmd[i])
        if w.startswith("--") and "=" not in w and i + 1 < len(cmd) and not str(cmd[i + 1]).startswith("-"):
            j = i + 1
            while j < len(cmd) and not str(cmd[j]).startswith("-") and "=" not in str(cmd[j]):
                j += 1
            flags[w] = tuple(map(str, cmd[i + 1:j]))
            i = j
        else:
            words.append(w) if not w.startswith("--") else flags.setdefault(w, ())
            i += 1
    flags.pop("--out", None)
    return tuple(words), tuple(sorted(flags.items()))


def make_sweep_dir(d: Path) -> None:
    """SWEEP_DIR: records of a roadmap (the steps as they are) and of a side sweep (model.kernel_size=5), each with
    its config.yaml and predictions.npz (agreeing with its top-1), as a completed run leaves them."""
    for step, variant, top1 in (("baseline/resnet50", "", 70.0), ("macro/stage_ratio", "", 71.0),
                                ("micro/gelu", "model.kernel_size=5", 60.0)):
        for seed in (0, 1):
            run = d / step / (variant + "/" if variant else "") / f"seed{seed}"
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(f"step: {step}\nseed: {seed}\n")  # what collect_results.py copies
            target = np.arange(100) % 10  # 100 images, the first top1 + seed of them right
            pred = np.where(np.arange(100) < top1 + seed, target, (target + 1) % 10)
            save_predictions(pred, target, run / "predictions.npz")
            (run / "metrics.json").write_text(json.dumps({
                "step": step, "seed": seed, "data": "cifar100", "budget": "short", "regime": "r50", "undo": None,
                "status": "completed", "final_top1": top1 + seed, "best_top1": top1 + seed, "gmacs": 1.0,
                "params": 10, "images_per_s": 100.0, "variant": variant}))


def test_the_docs_show_commands_and_each_one_has_a_way_to_run():
    commands = documented()
    where = {w for w, _ in commands}
    assert {"README.md", "plot_roadmap.py --help", "benchmark.py --help", "inspect_steps.py --help"} <= where
    assert any("run.py -m +sweep=roadmap" in c for _, c in commands)
    assert any("run.py" in c for c in quick_start())  # the quick start runs fresh
    runner = Runner(Path("/nonexistent"))
    for w, command in commands:
        if not pattern(command):
            for argv in segments(command):
                runner.argv(argv)  # raises for a command with no rule
    # the datasets the docs name compose as documented (the runs below use the shipped one offline)
    for data in sorted({m for _, c in commands for m in re.findall(r"\bdata=(\w+)", c)}):
        assert compose_dict("micro/gelu", [f"data={data}"]).data.name == data


def test_a_scaled_command_changes_only_its_scale():
    """The documented run.py commands (torchrun's too) run with their own loader, pipeline, launcher, threads, network
    and W&B: what the tests append is scale only; and the check refuses what is not."""
    checked = 0
    for where, command in documented():
        for argv in ([] if pattern(command) else segments(command)):
            if "run.py" in argv and not any(a.startswith("hydra/launcher=slurm") for a in argv):  # slurm: --cfg only
                printed = argv[argv.index("run.py") + 1:]
                assert beyond_scale(printed, scaled_run(printed)) == [], f"{where}: {shlex.join(argv)}"
                checked += 1
    assert checked >= 10
    femto = ["-m", "+experiment=femto_cpu"]
    assert beyond_scale(femto, scaled_run(femto)) == []
    for extra in ("data.num_workers=0", "data.pipeline=device", "hydra/launcher=basic", "hydra.launcher.n_jobs=1",
                  "system.threads=2", "model.depths=[1,1,1,1]", "model.base_width=16", "wandb=disabled", "data=cifar10"):
        assert beyond_scale(femto, scaled_run(femto) + [extra]) == [extra]
    assert beyond_scale(["step=micro/gelu"], ["step=micro/gelu", *TINY, "seed=1"]) == ["seed=1"]  # not a sweep
    assert beyond_scale(["-m", "seed=0,1"], ["-m", "seed=0,1", "seed=2"]) == ["seed=2"]  # not one of its seeds
    assert beyond_scale(["-m", "seed=0,1"], ["-m", "seed=0,1", "seed=1"]) == []
    lrs = ["-m", "+experiment=femto_search", "train.base_lr=0.1,0.2,0.4"]
    assert scaled_run(lrs)[-2:] == ["seed=0", "train.base_lr=0.1,0.2"] and beyond_scale(lrs, scaled_run(lrs)) == []
    assert beyond_scale(lrs, lrs + ["train.base_lr=0.3"]) == ["train.base_lr=0.3"]  # not one of its values
    assert beyond_scale(["-m", "train.base_lr=0.1"], ["-m", "train.base_lr=0.1", "train.base_lr=0.1"]) == [
        "train.base_lr=0.1"]  # a setting the command does not sweep is not the sweep's scale


def key(argv: list[str]) -> tuple:
    """The shape of what a documented command runs as, before anything has run (no measured files yet); for run.py,
    its settings as they take effect (the last value of each, in any order: `seed=0,1,2` cut to two and `seed=0,1`
    run the same jobs)."""
    cmd = Runner(Path("/nonexistent")).argv(argv)[0]
    if len(cmd) > 1 and Path(str(cmd[1])).name == "run.py":
        args = last_wins(cmd[2:])
        cmd = [*cmd[:2], *[a for a in args if "=" not in a], *sorted(a for a in args if "=" in a)]
    return shape(cmd)


@functools.cache
def first_pages() -> dict[tuple, str]:
    """Each distinct command (its shape) and the page that shows it first: the page that runs it."""
    first = {}
    for where, command in documented():
        if not pattern(command):
            for argv in segments(command):
                first.setdefault(key(argv), where)
    return first


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted({w for w, _ in documented()}))
def test_every_documented_command_runs_in_its_documented_form(tmp_path, page):
    """Page by page, in the page's order (a sweep, then its chart), so that the pages run side by side (pytest -n);
    a command shown on several pages (or for another size) runs once, on the first, and a sweep folder that a chart
    or a copy on a later page names gets hand-made records (as SWEEP_DIR)."""
    runner, first, ran = Runner(tmp_path), first_pages(), set()
    make_sweep_dir(runner.sweep_dir)
    for where, command in documented():
        if where != page or pattern(command):
            continue
        for argv in segments(command):
            shown = key(argv)
            if first[shown] == page and shown not in ran:
                ran.add(shown)
                runner.run(where, argv)


def python_snippets() -> list[tuple[str, str]]:
    """(page, code) for every ```python block of the README and the docs pages."""
    return [(p.name, code) for p in PAGES for code in re.findall(r"```python\n(.*?)```", p.read_text(), re.S)]


@pytest.mark.parametrize("page, code", python_snippets(), ids=lambda v: v if v.endswith(".md") else "code")
def test_every_documented_python_snippet_runs_as_printed(page, code, tmp_path, monkeypatch):
    """As a user pastes it into Python started in the checkout: each line in turn, and an expression's value
    must be what the comment beside it says it is (a typed RunConfig, the steps in paper order)."""
    import roadmap
    from roadmap.schema import RunConfig
    monkeypatch.chdir(ROOT)
    scope = {}
    results = {}
    for node in ast.parse(code).body:
        line = ast.get_source_segment(code, node)
        if isinstance(node, ast.Expr):
            results[line] = eval(compile(ast.Expression(node.value), page, "eval"), scope)
        else:
            exec(compile(ast.Module([node], []), page, "exec"), scope)
    if "kernel_size=9" in code:  # the override the snippet gives reaches the typed config
        assert isinstance(scope["cfg"], RunConfig) and scope["cfg"].model.kernel_size == 9
    for line, value in results.items():
        if "roadmap_steps()" in line:
            assert value == [s.name for s in roadmap.roadmap_steps()] and value[0] == "baseline/resnet50" \
                and value[-1] == "micro/separate_downsample" and len(value) == 17, value
        if "count_gmacs" in line:
            assert isinstance(value, float) and value > 0, value


def test_the_converged_studys_status_tables_copy_its_committed_records():
    """docs/femto_converged.md's status: seed 0's top-1 after every epoch and each later seed's last, with wall times
    in minutes, as `scripts/status.py docs/results/femto_converged/runs --epochs` prints them from the records."""
    from roadmap.analysis.read import records_from_dirs
    runs = {(r.step, r.seed): r for r in records_from_dirs([ROOT / "docs/results/femto_converged/runs"])
            if r.status == "completed"}
    status = (ROOT / "docs/femto_converged.md").read_text().split("\n## Status\n", 1)[1]
    shown = {}
    for cells in ([c.strip() for c in line.strip("|").split("|")] for line in status.splitlines()
                  if line.startswith("| ") and "/" in line.split("|")[1]):
        if len(cells) == 4:  # step, recipe, top-1 after each epoch, wall time (seed 0)
            shown[(cells[0], 0)] = ([float(v.strip("* ")) for v in cells[2].split(",")], cells[3])
        else:  # step, then the last top-1 and the wall time of seeds 1 and 2 (blank until they are in)
            for seed, (top1, wall) in enumerate(zip(cells[1::2], cells[2::2]), start=1):
                if top1:
                    shown[(cells[0], seed)] = ([float(top1)], wall)
    assert len(shown) == len(runs) and set(shown) == set(runs), set(shown) ^ set(runs)
    printed = run_script(ROOT / "scripts/status.py", ROOT / "docs/results/femto_converged/runs", "--epochs").stdout
    lines = dict(line.split(": top-1 after each epoch ", 1) for line in printed.splitlines() if " epoch " in line)
    for (step, seed), (top1, wall) in shown.items():
        epochs, minutes = lines[f"{step} seed {seed}"].split("; ")
        epochs = [float(v) for v in epochs.split(", ")]
        assert top1 == (epochs if seed == 0 else epochs[-1:]), (step, seed, top1, epochs)
        assert wall.split(" min")[0] == minutes.split(" min")[0], (step, seed, wall, minutes)
        assert epochs == [round(h.val_top1, 2) for h in runs[(step, seed)].history]

"""Bad inputs and faults a user meets, each pointed at a copy of a completed run: every one fails with exit status
1, no traceback, one line naming the setting, and leaves the run's records and checkpoint byte-for-byte as
they were. The commands run a few at a time in one fixture; each case is asserted on its own."""
import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from conftest import FAST, ROOT, clean_env, last_wins, run_cli, train_cli

from roadmap.train.lock import RunLock

RECORDS = ("metrics.json", "checkpoint.pt", "config.yaml", "overrides.yaml")

# (id, overrides, what the message must contain, where: "run" = a copy of the completed run; "fresh" = a new
# directory (the failure comes from the data, checked before the directory is made); "locked" = a copy held by
# another process; "corrupt" = a copy whose checkpoint is unreadable)
CASES = [
    ("plus_typo", ["+model.kernal_size=5"], ["model.kernal_size", "did you mean model.kernel_size"], "run"),
    ("typo", ["model.kernal_size=5"], ["model.kernal_size", "did you mean model.kernel_size"], "run"),
    ("top_level_typo", ["kernel=5"], ["kernel is not a setting", "model.kernel_size"], "run"),
    ("unknown_section", ["trian.base_lr=0.1"], ["trian.base_lr is not a setting", "train"], "run"),
    ("bn_batch_1", ["step=baseline/resnet50", "train.batch_size=1"], ["train.batch_size=1", "BatchNorm"], "run"),
    ("mixup_odd_batch", ["train.batch_size=15"], ["train.batch_size=15", "even", "train.mixup"], "run"),
    ("resolution_16", ["step=convnext_t", "data.resolution=16"],
     ["data.resolution=16", "1x1 map", "data.resolution=32"], "run"),
    ("resolution_4", ["data.resolution=4"], ["data.resolution=4", "at least 8"], "run"),
    ("root_not_npz", ["data.root=/etc/passwd"], ["data.root='/etc/passwd'", "x_train"], "fresh"),
    ("image_folder_no_root", ["data=image_folder"], ["data.num_classes and data.root must be set"], "run"),
    ("image_folder_missing", ["data=image_folder", "data.num_classes=10", "data.root=/nonexistent"],
     ["/nonexistent/train", "data.root"], "fresh"),
    ("fashion_missing", ["data=fashion_mnist", "data.root=/nonexistent"],
     ["/nonexistent/train-images-idx3-ubyte.gz", "data.root"], "fresh"),
    ("cifar_no_download", ["data=cifar10", "data.root=/nonexistent", "data.download=false"],
     ["/nonexistent/cifar-10-batches-py", "data.root"], "fresh"),
    ("batch_larger_than_data", ["train.batch_size=6000"], ["train.batch_size=6000", "5000"], "fresh"),
    ("no_cuda", ["system.device=cuda"], ["system.device='cuda'", "no CUDA device", "cpu"], "run"),
    ("bad_device", ["system.device=tpu"], ["system.device='tpu'", "auto, cpu, cuda"], "run"),
    ("unwritable_run_dir", ["hydra.run.dir=/sys/roadmap-test"], ["hydra.run.dir='/sys/roadmap-test'"], "none"),
    ("run_dir_under_a_file", ["hydra.run.dir=/etc/passwd/run"], ["hydra.run.dir='/etc/passwd/run'"], "none"),
    ("unknown_step", ["step=micro/gelux"], ["unknown step 'micro/gelux'", "micro/gelu"], "run"),
    ("step_without_group", ["step=gelu"], ["unknown step 'gelu' (did you mean micro/gelu?)"], "run"),
    ("unknown_data", ["data=cifar1000"], ["unknown data 'cifar1000'", "cifar100"], "run"),
    ("unknown_recipe", ["recipe=modern"], ["unknown recipe 'modern'", "enhanced"], "run"),
    ("even_kernel", ["model.kernel_size=4"], ["model.kernel_size=4", "odd"], "run"),
    ("huge_kernel", ["model.kernel_size=33"], ["model.kernel_size=33", "1 to 31"], "run"),
    ("depths_widths", ["model.widths=[96,192]"], ["model.depths=[1, 1, 1, 1]", "model.widths=[96, 192]"], "run"),
    ("stem_stride", ["model.stem_stride=3"], ["model.stem_stride=3", "4 (the paper), 2 or 1"], "run"),
    ("base_width", ["model.base_width=0"], ["model.base_width=0", "positive integer"], "run"),
    ("drop_path", ["model.drop_path=1.5"], ["model.drop_path=1.5", "[0, 1)"], "run"),
    ("expansion", ["model.expansion=0"], ["model.expansion=0", ">= 1"], "run"),
    ("indivisible", ["step=baseline/resnet50", "model.widths=[250,500,1000,2000]"],
     ["model.widths=[250, 500, 1000, 2000]", "divisible"], "run"),
    ("layer_scale", ["model.layer_scale=-1"], ["model.layer_scale=-1", "0 (off)"], "run"),
    ("stem_enum", ["model.stem=foo"], ["model.stem=foo", "resnet, patchify"], "run"),
    ("norm_enum", ["model.norm=group"], ["model.norm=group", "batch, layer"], "run"),
    ("act_enum", ["model.activation=swish"], ["model.activation=swish", "relu, gelu"], "run"),
    ("opt_enum", ["train.opt=lamb"], ["train.opt=lamb", "sgd, adamw"], "run"),
    ("epochs_0", ["train.epochs=0"], ["train.epochs=0", "positive"], "run"),
    ("warmup", ["train.warmup_epochs=400"], ["train.warmup_epochs=400", "train.epochs=300"], "run"),
    ("crop_scale", ["train.crop_scale=[0.5,0.1]"], ["train.crop_scale=[0.5, 0.1]", "min <= max"], "run"),
    ("interpolation", ["train.interpolation=nearest"], ["train.interpolation='nearest'", "bicubic"], "run"),
    ("betas", ["train.betas=[0.9]"], ["train.betas=[0.9]", "two numbers"], "run"),
    ("hflip", ["train.hflip=2"], ["train.hflip=2", "probability"], "run"),
    ("base_lr", ["train.base_lr=-1"], ["train.base_lr=-1", "positive"], "run"),
    ("mixup_alpha", ["train.mixup=-1"], ["train.mixup=", "an alpha >= 0"], "run"),
    ("eval_crop", ["data.eval_crop_pct=0"], ["data.eval_crop_pct=0", "(0, 1]"], "run"),
    ("workers", ["data.num_workers=-1"], ["data.num_workers=-1", "0 (load"], "run"),
    ("epoch_scale", ["budget.epoch_scale=0"], ["budget.epoch_scale=0", "positive"], "run"),
    ("budget_epochs", ["budget.epochs=0"], ["budget.epochs=0", "positive integer"], "run"),
    ("budget_iters", ["budget.max_train_iters=0"], ["budget.max_train_iters=0", "positive integer"], "run"),
    ("wandb_mode", ["wandb.mode=maybe"], ["wandb.mode=maybe", "auto, online, offline, disabled"], "run"),
    ("wandb_log_every", ["wandb.log_every=-5"], ["wandb.log_every=-5", ">= 0"], "run"),
    ("wandb_console", ["wandb.console=tee"], ["wandb.console=tee", "wrap, redirect, off"], "run"),
    ("seed_type", ["seed=abc"], ["seed=abc", "Integer"], "run"),
    ("other_config", ["train.base_lr=0.1"], ["holds a checkpoint of another configuration",
                                             "train.base_lr: 0.004 -> 0.1"], "run"),
    ("in_use", [], ["is in use by pid", "stopped without touching it"], "locked"),
    ("corrupt_checkpoint", [], ["checkpoint.pt cannot be read", "left as it is"], "corrupt"),
]


# the cases whose behaviour needs the whole command in its own process: the run's own refusals (another config's
# checkpoint, a held lock, a corrupt checkpoint), run directories Hydra is given, and one of each kind of refusal
# made before Hydra starts, for the exit status and the one line on stderr; every other case is checked in this
# process on the same code path (IN_PROCESS below), which keeps the suite's cost down
PROCESS = {"plus_typo", "resolution_16", "root_not_npz", "fashion_missing", "unwritable_run_dir",
           "run_dir_under_a_file", "other_config", "in_use", "corrupt_checkpoint"}
PROCESS_CASES = [c for c in CASES if c[0] in PROCESS]


_HASHES: dict = {}


def _sha(path: Path) -> str:
    """The file's SHA-256 (cached per inode, size and modification time: the hard-linked copies share one)."""
    st = path.stat()
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _HASHES[key]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults")
    done = base / "completed"
    train_cli(done, "step=micro/gelu")
    before = {name: _sha(done / name) for name in RECORDS}
    dirs = {}
    for case, _, _, where in PROCESS_CASES:  # hard links: a copy of every case's own, without 60 MB each
        d = base / case
        if where in ("run", "locked", "corrupt"):
            d.mkdir()
            for name in RECORDS:
                os.link(done / name, d / name)
        if where == "corrupt":
            (d / "checkpoint.pt").unlink()
            (d / "checkpoint.pt").write_bytes(b"junk")
        dirs[case] = d
    locked = RunLock(dirs["in_use"]).__enter__()  # held by this process while the cases run

    def run(case):
        name, overrides, _, where = case
        args = [ROOT / "run.py", *FAST, "step=micro/gelu", *overrides]  # run_cli keeps the last of each setting
        if where != "none":
            args.append(f"hydra.run.dir={dirs[name]}")
        return name, run_cli(*args, timeout=300)

    try:
        with ThreadPoolExecutor(3) as pool:
            results = dict(pool.map(run, PROCESS_CASES))
    finally:
        locked.__exit__(None, None, None)
    return {"results": results, "dirs": dirs, "before": before, "done": done}


def test_at_least_40_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.xdist_group("faults")  # the commands run once, in one process (pytest -n --dist loadgroup)
@pytest.mark.parametrize("case", PROCESS_CASES, ids=[c[0] for c in PROCESS_CASES])
def test_a_bad_input_or_fault_fails_in_one_line_naming_the_setting_and_changes_nothing(outcomes, case):
    name, overrides, expected, where = case
    proc = outcomes["results"][name]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.replace("\r", "\n").splitlines() if ln.strip() and "it/s" not in ln]
    errors = [ln for ln in lines if "ERROR" in ln or ln.startswith("error:")]
    assert len(errors) == 1, lines
    for text in expected:
        assert text in errors[0], (text, errors[0])
    assert {n: _sha(outcomes["done"] / n) for n in RECORDS} == outcomes["before"]
    d = outcomes["dirs"][name]
    if where in ("run", "locked"):
        assert {n: _sha(d / n) for n in RECORDS} == outcomes["before"], "a record or the checkpoint changed"
        # refused before Hydra starts: not even a log; only a checkpoint of another config or a held lock is found
        # by the run itself, once it holds (or tries) the directory
        extra = {".lock", "run.log"} if name in ("other_config", "in_use") else set()
        assert sorted(p.name for p in d.iterdir() if p.name not in extra) == sorted(RECORDS)
    elif where == "corrupt":
        assert (d / "checkpoint.pt").read_bytes() == b"junk"
        assert {n: _sha(d / n) for n in RECORDS if n != "checkpoint.pt"} == \
            {n: h for n, h in outcomes["before"].items() if n != "checkpoint.pt"}
    elif where == "fresh":  # the data is checked before the run's directory is made: nothing is written
        assert not d.exists(), sorted(p.name for p in d.iterdir())


# Bad values and faults checked in this process, on the code path a single run takes before Hydra writes anything
# (run.py: check_command_line, then preflight with the device and data checks): each raises one line naming the
# setting and what is allowed, and the run directory is never made. (id, overrides, what the message must contain)
IN_PROCESS = [
    ("lr_nan", ["train.base_lr=nan"], ["train.base_lr=nan", "positive"]),
    ("lr_inf", ["train.base_lr=inf"], ["train.base_lr=inf", "positive"]),
    ("lr_huge", ["train.base_lr=100"], ["train.base_lr=100.0", "at most 10"]),
    ("ref_batch_0", ["train.ref_batch=0"], ["train.ref_batch=0", "positive"]),
    ("batch_0", ["train.batch_size=0"], ["train.batch_size=0", "positive"]),
    ("momentum", ["train.momentum=1.5"], ["train.momentum=1.5", "[0, 1)"]),
    ("weight_decay", ["train.weight_decay=-1"], ["train.weight_decay=-1.0", "[0, 1]"]),
    ("betas_range", ["train.betas=[0.9,1.5]"], ["train.betas=[0.9, 1.5]", "[0, 1)"]),
    ("milestones", ["recipe=classic", "train.decay_milestones=[60,30]"], ["train.decay_milestones=[60, 30]",
                                                                        "increasing"]),
    ("decay_rate", ["train.decay_rate=0"], ["train.decay_rate=0.0", "factor > 0"]),
    ("smoothing", ["train.smoothing=1"], ["train.smoothing=1.0", "[0, 1)"]),
    ("grad_clip", ["train.grad_clip=0"], ["train.grad_clip=0.0", "positive norm"]),
    ("ema_decay", ["train.ema_decay=1"], ["train.ema_decay=1.0", "(0, 1)"]),
    ("warmup_lr", ["train.warmup_lr=-1"], ["train.warmup_lr=-1.0", ">= 0"]),
    ("min_lr_nan", ["train.min_lr=nan"], ["train.min_lr=nan", ">= 0"]),
    ("re_prob_nan", ["train.re_prob=nan"], ["train.re_prob=nan", "probability"]),
    ("mixup_nan", ["train.mixup=nan"], ["train.mixup=", "an alpha >= 0"]),
    ("epoch_scale_inf", ["budget.epoch_scale=inf"], ["budget.epoch_scale=inf", "positive"]),
    ("layer_scale_nan", ["model.layer_scale=nan"], ["model.layer_scale=nan", "0 (off)"]),
    ("drop_path_nan", ["model.drop_path=nan"], ["model.drop_path=nan", "[0, 1)"]),
    ("std_zero", ["data.std=[0,1,1]"], ["data.std=[0.0, 1.0, 1.0]", "each > 0"]),
    ("mean_short", ["data.mean=[0.5]"], ["data.mean=[0.5]", "three finite numbers"]),
    ("seed_negative", ["seed=-1"], ["seed=-1", "0 to 2**31 - 1"]),
    ("threads", ["system.threads=-1"], ["system.threads=-1", "0 (automatic)"]),
    ("eval_batch_size", ["system.eval_batch_size=-2"], ["system.eval_batch_size=-2", "0 (twice train.batch_size)"]),
    ("auto_augment", ["train.auto_augment=bogus"], ["train.auto_augment='bogus'", "rand-m9-mstd0.5-inc1"]),
    ("in_chans", ["model.in_chans=1"], ["model.in_chans=1", "RGB"]),
    ("num_classes", ["model.num_classes=5"], ["model.num_classes=5", "data.num_classes=10"]),
    ("non_ascii", ["model.activation=gélu"], ["'model.activation=gélu'", "ASCII"]),
    ("twice", ["model.kernel_size=3", "model.kernel_size=5"], ["model.kernel_size is given twice",
                                                               "'model.kernel_size=3' and 'model.kernel_size=5'"]),
    ("empty_run_dir", ["hydra.run.dir="], ["hydra.run.dir=''", "current directory"]),
    ("empty_sweep_dir", ["-m", "hydra.sweep.dir="], ["hydra.sweep.dir=''", "current directory"]),
    ("unknown_sweep", ["+sweep=nonexistent"], ["unknown sweep 'nonexistent'", "leave_one_out, roadmap"]),
    ("unknown_experiment", ["+experiment=gpu"], ["unknown experiment 'gpu'", "femto_cpu"]),
    ("unknown_regime", ["regime=r100"], ["unknown regime 'r100'", "femto, r200, r50"]),
    ("no_cuda_in_process", ["system.device=cuda:0"], ["system.device='cuda:0'", "no CUDA device"]),
    ("dev_null_root", ["data.root=/dev/null"], ["data.root='/dev/null' is not a file", ".npz"]),
    ("missing_root", ["data.root=/nonexistent.npz"], ["data.root='/nonexistent.npz' does not exist"]),
    ("batch_over_data", ["train.batch_size=5002"], ["train.batch_size=5002", "5000 training images"]),
]


def _refuse_in_process(overrides: list[str], run_dir: Path) -> str:
    from roadmap.config.command_line import check_command_line, preflight
    from roadmap.train.lifecycle import can_start
    twice = len({o.split("=")[0] for o in overrides}) < len(overrides)
    argv = [*FAST, "step=micro/gelu", *overrides] if twice else last_wins([*FAST, "step=micro/gelu", *overrides])
    argv = argv if "hydra.run.dir=" in overrides or "-m" in overrides else [*argv, f"hydra.run.dir={run_dir}"]
    with pytest.raises(ValueError) as e:
        check_command_line(argv)
        preflight(argv, checks=(can_start,))
    return str(e.value)


IN_PROCESS += [(name, overrides, expected) for name, overrides, expected, _ in CASES if name not in PROCESS]


@pytest.mark.parametrize("case", IN_PROCESS, ids=[c[0] for c in IN_PROCESS])
def test_a_bad_value_is_refused_before_anything_is_written(case, tmp_path):
    name, overrides, expected = case
    if name == "no_cuda_in_process" and torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    message = _refuse_in_process(overrides, tmp_path / "run")
    assert "\n" not in message and all(text in message for text in expected), message
    assert not (tmp_path / "run").exists()


def test_the_fault_suite_has_at_least_80_cases():
    assert len(PROCESS_CASES) + len(IN_PROCESS) + len(DAMAGED) + 3 >= 80
    assert len({c[0] for c in IN_PROCESS}) == len(IN_PROCESS)  # + the three disk cases below


def _no_space(fn):
    """Run `fn` with writes failing as on a full disk (EFBIG through RLIMIT_FSIZE=0, SIGXFSZ ignored)."""
    import resource
    import signal
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        return fn()
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_full_disk_when_a_run_starts_is_one_line_and_leaves_no_folder(tmp_path):
    message = _no_space(lambda: _refuse_in_process([], tmp_path / "new" / "run"))
    assert "hydra.run.dir=" in message and "cannot be written" in message and "free space" in message
    assert not (tmp_path / "new").exists()


def test_the_run_lock_on_a_full_disk_fails_in_one_line_and_leaves_no_empty_lock(tmp_path):
    from roadmap.errors import WriteFailed
    with pytest.raises(WriteFailed, match="could not write the run lock .* Free space"):
        _no_space(lambda: RunLock(tmp_path).__enter__())
    assert not (tmp_path / ".lock").exists()


def test_a_read_only_run_directory_is_one_line(tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("needs to mount a read-only tmpfs (root)")
    try:
        message = _refuse_in_process([], mount / "run")
        assert "cannot be written (Read-only file system)" in message
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_failed_download_leaves_no_empty_data_folder(tmp_path):
    from roadmap.config.compose import load_config
    from roadmap.data.sources import _cifar
    from roadmap.errors import DataError

    class Offline:
        def __init__(self, root, train, download):
            Path(root).mkdir(parents=True, exist_ok=True)  # as torchvision does before it downloads
            raise RuntimeError("Dataset not found") if not download else OSError("Name or service not known")
    cfg = load_config(None, ["data=cifar100", f"data.root={tmp_path / 'data/cifar100'}"]).data
    with pytest.raises(DataError, match="the download failed"):
        _cifar(cfg, Offline, "cifar-100-python", "https://example.invalid/cifar.tar.gz")
    assert not (tmp_path / "data/cifar100").exists()


# Damaged records beside good ones: every reader skips and names them, none stops or misdiagnoses.
DAMAGED = [("truncated", "{\"status\": \"compl"), ("a_list", "[1, 2]"), ("empty", ""), ("binary", "\x00\xff")]


@pytest.mark.parametrize("kind,text", DAMAGED, ids=[d[0] for d in DAMAGED])
def test_a_damaged_record_is_named_and_skipped_by_the_chart(kind, text, tmp_path):
    import json

    from roadmap.analysis.read import records_from_dirs
    from roadmap.analysis.roadmap import chart_roadmap
    good = {"step": "micro/gelu", "label": "gelu", "seed": 0, "variant": "", "regime": "r50", "undo": None,
            "data": "cifar10", "budget": "short", "status": "completed", "final_top1": 50.0, "best_top1": 50.0,
            "params": 1, "gmacs": 0.1, "images_per_s": 1.0}
    for seed in (0, 1):
        (tmp_path / f"gelu/seed{seed}").mkdir(parents=True)
        (tmp_path / f"gelu/seed{seed}/metrics.json").write_text(json.dumps(good | {"seed": seed}))
    (tmp_path / "bad/seed0").mkdir(parents=True)
    (tmp_path / "bad/seed0/metrics.json").write_bytes(text.encode("latin-1"))
    rows, failed = chart_roadmap(records_from_dirs([tmp_path]), tmp_path / "out")
    assert [r.n for r in rows if r.step == "micro/gelu"] == [2]
    assert len(failed) == 1 and failed[0].status == "unreadable" and "bad/seed0" in failed[0].path
    assert "bad/seed0" in (tmp_path / "out/roadmap.md").read_text()
    (tmp_path / "gelu").rename(tmp_path / "gone")
    import shutil
    shutil.rmtree(tmp_path / "gone")
    with pytest.raises(ValueError, match="no readable run record among 1: .*bad/seed0"):
        chart_roadmap(records_from_dirs([tmp_path]), tmp_path / "out2")


def test_a_killed_run_is_shown_as_killed_where_its_lock_is_free(tmp_path):
    import json

    from roadmap.analysis.read import records_from_dirs
    run = tmp_path / "gelu/seed0"
    run.mkdir(parents=True)
    (run / "metrics.json").write_text(json.dumps({"step": "micro/gelu", "status": "running", "epochs_done": 2}))
    (run / ".lock").write_text("{}")
    assert records_from_dirs([tmp_path])[0].status == "killed"
    with RunLock(run):  # alive: still running
        assert records_from_dirs([tmp_path])[0].status == "running"


def test_plot_roadmap_from_wandb_without_an_api_key_is_one_line(tmp_path):
    env = clean_env(WANDB_MODE="online", WANDB_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path))
    proc = subprocess.run([sys.executable, str(ROOT / "scripts/plot_roadmap.py"), "--wandb", "me/proj", "--group",
                           "g", "--out", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "wandb login" in lines[0] and "plot_roadmap.py outputs/sweeps/" in lines[0]

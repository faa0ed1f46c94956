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
from conftest import FAST, ROOT, clean_env, load, train_cli

from roadmap.lock import RunLock

RECORDS = ("metrics.json", "checkpoint.pt", "config.yaml", "overrides.yaml")

# (id, overrides, what the message must contain, where: "run" = a copy of the completed run; "fresh" = a new
# directory (the failure comes from the data, found after the run starts); "locked" = a copy held by another
# process; "corrupt" = a copy whose checkpoint is unreadable)
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
    ("mixup_alpha", ["train.mixup=-1"], ["train.mixup/cutmix", "alphas >= 0"], "run"),
    ("eval_crop", ["data.eval_crop_pct=0"], ["data.eval_crop_pct=0", "(0, 1]"], "run"),
    ("workers", ["data.num_workers=-1"], ["data.num_workers=-1", "0 (load"], "run"),
    ("epoch_scale", ["budget.epoch_scale=0"], ["budget.epoch_scale=0", "positive"], "run"),
    ("budget_epochs", ["budget.epochs=0"], ["budget.epochs=0", "positive integer"], "run"),
    ("budget_iters", ["budget.max_train_iters=0"], ["budget.max_train_iters=0", "positive integer"], "run"),
    ("wandb_mode", ["wandb.mode=maybe"], ["wandb.mode=maybe", "auto, online, offline, disabled"], "run"),
    ("seed_type", ["seed=abc"], ["seed=abc", "Integer"], "run"),
    ("other_config", ["train.base_lr=0.1"], ["holds a checkpoint of another configuration",
                                             "train.base_lr: 0.004 -> 0.1"], "run"),
    ("in_use", [], ["is in use by pid", "stopped without touching it"], "locked"),
    ("corrupt_checkpoint", [], ["checkpoint.pt cannot be read", "left as it is"], "corrupt"),
]


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
    for case, _, _, where in CASES:  # hard links: a copy of every case's own, without 60 MB each
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
        args = [sys.executable, str(ROOT / "run.py"), *FAST, "step=micro/gelu", *overrides]
        if where != "none":
            args.append(f"hydra.run.dir={dirs[name]}")
        return name, subprocess.run(args, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=300)

    try:
        with ThreadPoolExecutor(3) as pool:
            results = dict(pool.map(run, CASES))
    finally:
        locked.__exit__(None, None, None)
    return {"results": results, "dirs": dirs, "before": before, "done": done}


def test_at_least_40_cases():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
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
        assert sorted(p.name for p in d.iterdir() if p.name not in (".lock", "run.log")) == sorted(RECORDS)
    elif where == "corrupt":
        assert (d / "checkpoint.pt").read_bytes() == b"junk"
        assert {n: _sha(d / n) for n in RECORDS if n != "checkpoint.pt"} == \
            {n: h for n, h in outcomes["before"].items() if n != "checkpoint.pt"}
    elif where == "fresh":  # the run started, so it says how it ended
        rec = load(d)
        assert rec["status"] == "failed" and rec["reason"].startswith("DataError")
        assert not (d / "checkpoint.pt").exists()

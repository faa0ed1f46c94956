import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

# a real run, made small: a few iterations of a one-block-per-stage network on the shipped dataset
FAST = ["budget=smoke", "budget.max_train_iters=3", "budget.max_eval_iters=2", "data.num_workers=0",
        "train.batch_size=16", "model.depths=[1,1,1,1]", "wandb=disabled"]


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", **extra)
    return env


def run_cli(*args, cwd=ROOT, env=None, timeout=600, check=False, module=None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, *(["-m", module] if module else []), *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, env=env or clean_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def train_cli(run_dir, *overrides, check=True, **kw) -> subprocess.CompletedProcess:
    return run_cli(ROOT / "run.py", *FAST, *overrides, f"hydra.run.dir={run_dir}", check=check, **kw)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)

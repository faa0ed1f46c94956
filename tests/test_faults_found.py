"""The faults a user met on a fresh install (the issue "every documented command runs as printed"), each kept here:
damaged data files, image folders with an empty class or a corrupt image, a batch near the data's size, damaged and
hand-edited records and predictions, copies of copies, read-only destinations, broken config files and a Ctrl-C while
the program loads. Each ends in one line naming the file or the setting, no traceback, nothing written before a
refusal; a damaged file is named and skipped by every reader, and a run is counted once however many copies of it a
folder holds."""
import csv
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, ROOT, clean_env, last_wins, run_cli, run_script
from PIL import Image

from roadmap.data.sources import SHIPPED
from roadmap.record import save_predictions


def refuse(overrides: list[str], run_dir: Path) -> str:
    """The one-line refusal of a single run's command, checked in this process as run.py checks it."""
    from roadmap.config.command_line import check_command_line, preflight
    from roadmap.train.lifecycle import can_start
    argv = last_wins([*FAST, "step=micro/gelu", *overrides, f"hydra.run.dir={run_dir}"])
    with pytest.raises(ValueError) as e:
        check_command_line(argv)
        preflight(argv, checks=(can_start,))
    message = str(e.value)
    assert "\n" not in message and not run_dir.exists(), message
    return message


def idx(path: Path, data: np.ndarray, magic: int | None = None) -> None:
    header = (magic or 0x800 + data.ndim).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in data.shape)
    with gzip.open(path, "wb", compresslevel=1) as f:  # the fastest: 9 (the default) takes a second a folder
        f.write(header + data.astype(np.uint8).tobytes())


@pytest.fixture
def fashion(tmp_path) -> Path:
    """A Fashion-MNIST folder of four good idx files (the shipped subset's images), to damage one of."""
    d = dict(np.load(SHIPPED))
    root = tmp_path / "fmnist"
    root.mkdir()
    idx(root / "train-images-idx3-ubyte.gz", d["x_train"])
    idx(root / "train-labels-idx1-ubyte.gz", d["y_train"])
    idx(root / "t10k-images-idx3-ubyte.gz", d["x_val"])
    idx(root / "t10k-labels-idx1-ubyte.gz", d["y_val"])
    return root


def test_good_idx_files_read_as_fashion_mnist(fashion, tmp_path):
    from roadmap.data.fashion_mnist import read_fashion_mnist
    images, labels = read_fashion_mnist(str(fashion), "train")
    assert images.shape == (5000, 28, 28) and np.array_equal(labels, np.load(SHIPPED)["y_train"])


@pytest.mark.parametrize("damage, expected", [
    ("fewer_labels", ["holds 5000 images but", "holds 10 labels", "do not belong together"]),
    ("random_bytes", ["train-images-idx3-ubyte.gz is not a readable gzip file"]),
    ("truncated", ["train-images-idx3-ubyte.gz is not a readable gzip file"]),
    ("gzip_of_garbage", ["train-images-idx3-ubyte.gz is not an idx file", "0x803"]),
    ("short_data", ["train-images-idx3-ubyte.gz holds", "header announces 5000 x 28 x 28"]),
])
def test_a_damaged_fashion_mnist_file_is_named_in_one_line_before_anything_is_written(fashion, tmp_path, damage,
                                                                                        expected):
    images = fashion / "train-images-idx3-ubyte.gz"
    if damage == "fewer_labels":
        idx(fashion / "train-labels-idx1-ubyte.gz", np.zeros(10))
    elif damage == "random_bytes":
        images.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "truncated":
        images.write_bytes(images.read_bytes()[:3000])
    elif damage == "gzip_of_garbage":
        images.write_bytes(gzip.compress(np.random.default_rng(0).bytes(4984)))
    else:
        raw = gzip.decompress(images.read_bytes())
        images.write_bytes(gzip.compress(raw[:-784], compresslevel=1))
    message = refuse(["data=fashion_mnist", f"data.root={fashion}"], tmp_path / "run")
    assert all(text in message for text in expected), message


def test_too_few_classes_for_the_labels_is_refused_before_anything_is_written(tmp_path):
    message = refuse(["data.num_classes=5"], tmp_path / "run")
    assert "data.num_classes=5 is not allowed" in message and "labels up to 9" in message


@pytest.fixture
def folder(tmp_path) -> Path:
    """An image folder: train/ and val/, three classes of four PNG images each."""
    x = np.load(SHIPPED)["x_train"]
    for split in ("train", "val"):
        for c in range(3):
            d = tmp_path / "images" / split / f"class{c}"
            d.mkdir(parents=True)
            for i in range(4):
                Image.fromarray(x[4 * c + i]).save(d / f"{i}.png")
    return tmp_path / "images"


def test_an_empty_class_folder_is_named_before_anything_is_written(folder, tmp_path):
    for f in (folder / "val/class1").iterdir():
        f.unlink()
    message = refuse(["data=image_folder", f"data.root={folder}", "data.num_classes=3"], tmp_path / "run")
    assert f"{folder / 'val/class1'} holds no image" in message, message


def test_image_folder_classes_other_than_num_classes_are_refused_before_anything_is_written(folder, tmp_path):
    message = refuse(["data=image_folder", f"data.root={folder}", "data.num_classes=4"], tmp_path / "run")
    assert "3 train and 3 val class folders, data.num_classes=4" in message, message


@pytest.mark.slow
def test_a_corrupt_image_ends_the_run_in_one_line_naming_the_file(folder, tmp_path):
    bad = folder / "train/class2/1.png"
    bad.write_bytes(b"not a png at all")
    run_dir = tmp_path / "run"
    proc = run_cli(ROOT / "run.py", *FAST, "data=image_folder", f"data.root={folder}", "data.num_classes=3",
                   "data.num_workers=2", "train.batch_size=4", "budget.max_train_iters=3", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert f"{bad} is not a readable image" in last, proc.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "failed" and str(bad) in record["reason"]


@pytest.mark.slow
def test_a_batch_near_the_datas_size_runs_with_the_automatic_pipeline(tmp_path):
    """2000 of 5000 images: two batches an epoch, fewer than the pipeline probe times (it takes them again)."""
    run_dir = tmp_path / "run"
    proc = run_cli(ROOT / "run.py", *[a for a in FAST if a != "data.num_workers=0"], "train.batch_size=2000",
                   "budget.max_train_iters=2", "budget.max_eval_iters=1", f"hydra.run.dir={run_dir}",
                   f"paths.output_dir={tmp_path / 'out'}")  # the probe measures here: no choice kept yet
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    record = json.loads((run_dir / "metrics.json").read_text())
    assert record["status"] == "completed" and record["pipeline_probe"] is not None


def completed(run: Path, step: str, seed: int, top1: float, predictions: bool = True, **extra) -> None:
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"step: {step}\nseed: {seed}\n")
    record = {"step": step, "seed": seed, "data": "fashion_mnist", "budget": "b", "regime": "femto", "undo": None,
              "status": "completed", "final_top1": top1, "best_top1": top1, "gmacs": 1.0, "params": 10,
              "images_per_s": 100.0, "variant": "", "epochs_done": 1, "wall_time_s": 1.0}
    if predictions:
        target = np.arange(100) % 10
        save_predictions(np.where(np.arange(100) < top1, target, (target + 1) % 10), target, run / "predictions.npz")
        record["predictions"] = "predictions.npz"
    (run / "metrics.json").write_text(json.dumps(record | extra))


@pytest.fixture
def sweep(tmp_path) -> Path:
    d = tmp_path / "sweep"
    for step, top1 in (("baseline/resnet50", 70), ("macro/stage_ratio", 72)):
        for seed in (0, 1):
            completed(d / step / f"seed{seed}", step, seed, top1 + seed)
    return d


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_a_zip", "wrong_arrays"])
def test_a_damaged_predictions_file_is_named_and_its_run_charted_without_the_bootstrap(sweep, tmp_path, damage):
    path = sweep / "macro/stage_ratio/seed1/predictions.npz"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "not_a_zip":
        path.write_text("hello")
    else:
        np.savez(path, pred=np.zeros(5), target=np.zeros(7))
    out = tmp_path / "chart"
    proc = run_script(ROOT / "scripts/plot_roadmap.py", sweep, "--out", out)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"{path}" in proc.stdout and "without the bootstrap" in proc.stdout, proc.stdout
    assert "4 completed runs over 2 of" in proc.stdout
    assert str(path) in (out / "roadmap.md").read_text()


@pytest.mark.parametrize("field, value", [("seed", [0]), ("final_top1", "high"), ("status", 3), ("history", {}),
                                          ("step", 5)])
def test_a_hand_edited_record_of_the_wrong_types_is_named_and_skipped(sweep, tmp_path, field, value):
    path = sweep / "macro/stage_ratio/seed1/metrics.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | {field: value}))
    out = tmp_path / "chart"
    proc = run_script(ROOT / "scripts/plot_roadmap.py", sweep, "--out", out)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "3 completed runs over 2 of" in proc.stdout and "1 failed" in proc.stdout, proc.stdout
    md = (out / "roadmap.md").read_text()
    assert f"metrics.json field {field}=" in md and "macro/stage_ratio/seed1" in md


def test_collecting_a_sweep_into_itself_again_and_again_copies_each_run_once(sweep, tmp_path):
    dest = sweep / "collected"
    for _ in range(3):
        proc = run_script(ROOT / "scripts/collect_results.py", sweep, dest)
        assert proc.returncode == 0, proc.stderr
    assert len(list(dest.rglob("metrics.json"))) == 4 and not (dest / "collected").exists()
    assert "4 completed run(s)" in proc.stdout and "0 added or updated now" in proc.stdout


def test_a_run_found_twice_is_counted_once_by_its_identity(sweep, tmp_path):
    shutil.copytree(sweep, tmp_path / "copy")
    shutil.copytree(sweep / "baseline", sweep / "old/baseline")  # a second copy under another path
    out = tmp_path / "chart"
    proc = run_script(ROOT / "scripts/plot_roadmap.py", sweep, tmp_path / "copy", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert "4 completed runs over 2 of" in proc.stdout, proc.stdout
    assert "3 copies of one run (baseline/resnet50, seed 0) counted once" in proc.stdout
    rows = {r.split(",")[0]: r for r in (out / "roadmap.csv").read_text().splitlines()}
    assert ",2," in rows["baseline/resnet50"] or rows["baseline/resnet50"].split(",")[3] == "2"


def test_collect_leaves_out_a_completed_run_whose_predictions_are_damaged(sweep, tmp_path):
    (sweep / "macro/stage_ratio/seed0/predictions.npz").write_bytes(b"PK\x03\x04 broken")
    proc = run_script(ROOT / "scripts/collect_results.py", sweep, tmp_path / "dest")
    assert proc.returncode == 0, proc.stderr
    assert "left out macro/stage_ratio/seed0: completed but" in proc.stdout and "unreadable" in proc.stdout
    assert len(list((tmp_path / "dest").rglob("metrics.json"))) == 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_destination_is_one_line(sweep, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = run_script(ROOT / "scripts/collect_results.py", sweep, ro / "dest")
        assert proc.returncode == 1 and "could not copy into" in proc.stderr and "Traceback" not in proc.stderr
        proc = run_script(ROOT / "scripts/plot_roadmap.py", sweep, "--out", ro / "chart")
        assert proc.returncode == 1 and "could not write the chart" in proc.stderr, proc.stderr
    finally:
        ro.chmod(0o755)


def test_a_read_only_destination_mounted_read_only_is_one_line(sweep, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("needs to mount a read-only tmpfs (root)")
    try:
        proc = run_script(ROOT / "scripts/collect_results.py", sweep, mount / "dest")
        assert proc.returncode == 1 and "could not copy into" in proc.stderr and "Read-only" in proc.stderr
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        proc = run_script(ROOT / "scripts/plot_roadmap.py", sweep, "--out", mount / "chart")
        assert proc.returncode == 1 and "could not write the chart" in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_config_file_that_is_not_yaml_is_named_in_one_line(tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    line = len((configs / "step/micro/gelu.yaml").read_text().splitlines()) + 3  # where the stream ends, unclosed
    with open(configs / "step/micro/gelu.yaml", "a") as f:
        f.write("model:\n  kernel_size: [3\n")
    env = clean_env(ROADMAP_CONFIG_DIR=str(configs))
    for argv in (["step=micro/layer_norm", "budget=smoke"], ["-m", "step=micro/gelu,micro/layer_norm"]):
        # fresh: refused before torch, timm and Hydra load, as a user's process is (a warm server would load them)
        proc = run_cli(ROOT / "run.py", *argv, f"hydra.run.dir={tmp_path / 'run'}", env=env, fresh=True)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert proc.stderr.strip().splitlines() == [
            f"error: {configs / 'step/micro/gelu.yaml'} is not valid YAML (line {line}): expected ',' or ']', but got "
            "'<stream end>'; fix or restore it"], proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_config_file_broken_after_a_check_is_named_by_the_next(tmp_path, monkeypatch):
    """The files parsed as valid are kept between checks, by content: a file spoiled in place, its size unchanged,
    is parsed again and named."""
    from roadmap.config.command_line import check_command_line
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    monkeypatch.setenv("ROADMAP_CONFIG_DIR", str(configs))
    check_command_line(["step=micro/gelu"])
    gelu = configs / "step/micro/gelu.yaml"
    text = gelu.read_text()
    gelu.write_text("[" + text[1:])  # as long as before: a list that never closes
    assert gelu.stat().st_size == len(text)
    with pytest.raises(ValueError, match=f"^{re.escape(str(gelu))} is not valid YAML"):
        check_command_line(["step=micro/gelu"])


def test_a_config_dir_that_is_not_one_is_named_in_one_line(tmp_path):
    proc = run_cli(ROOT / "run.py", "step=micro/gelu", env=clean_env(ROADMAP_CONFIG_DIR=str(tmp_path / "nowhere")),
                   fresh=True)  # refused before torch, timm and Hydra load (a warm server would load them)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines() == [
        f"error: ROADMAP_CONFIG_DIR='{tmp_path / 'nowhere'}' is not allowed: it holds no config.yaml; set it to the "
        "repository's configs/ folder, or unset it"], proc.stderr


def handles(pid: int, *signals) -> bool:
    """Whether the process has handlers of its own for these signals (its SigCgt mask in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line for line in status.splitlines() if line.startswith("SigCgt:")).split()[1], 16)
    return all(caught >> (s - 1) & 1 for s in signals)


@pytest.mark.parametrize("sig, code, delay", [(signal.SIGINT, 130, 0.0), (signal.SIGINT, 130, 1.0),
                                              (signal.SIGTERM, 143, 0.0), (signal.SIGTERM, 143, 1.0),
                                              (signal.SIGHUP, 129, 1.0)])  # one handler for all three
def test_a_signal_while_the_program_loads_is_one_line(tmp_path, sig, code, delay):
    """As soon as run.py has its handlers (its first lines), and a second into importing torch, timm and Hydra."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "step=micro/gelu", *FAST,
                             f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT, env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while not handles(proc.pid, signal.SIGINT, signal.SIGTERM, signal.SIGHUP) and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert err.strip().splitlines() == ["interrupted before the run started; nothing was written"], err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_a_run_that_fails_while_its_pipeline_is_built_is_in_wandb_as_failed_with_its_reason(folder, tmp_path):
    """W&B starts before the data and the pipeline: an image folder cannot take the device pipeline, which is found
    while the trainer is built."""
    from wandb_log import run_info
    run_dir = tmp_path / "run"
    proc = run_cli(ROOT / "run.py", *[a for a in FAST if a != "wandb=disabled"], "wandb=offline", "data=image_folder",
                   f"data.root={folder}", "data.num_classes=3", "data.pipeline=device", "train.batch_size=4",
                   f"hydra.run.dir={run_dir}", env=clean_env(HOME=str(tmp_path / "home")))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "data.pipeline=device needs a dataset held in memory" in proc.stderr.strip().splitlines()[-1]
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    summary = {k: json.loads(v) for k, v in run_info(offline)["summary"].items()}
    assert summary["status"] == "failed" and "data.pipeline=device needs" in summary["reason"]


def test_a_partial_sweep_is_charted_beside_its_runs_drawing_only_the_steps_that_have_runs(sweep):
    from roadmap.analysis.chart import Mark, drawn
    from roadmap.analysis.rows import Row
    proc = run_script(ROOT / "scripts/plot_roadmap.py", sweep)  # no --out: beside the runs
    assert proc.returncode == 0, proc.stderr
    assert all((sweep / f"roadmap.{ext}").is_file() for ext in ("png", "svg", "csv", "md")), sorted(sweep.iterdir())
    assert "no completed run: " in proc.stdout
    rows = list(csv.DictReader(open(sweep / "roadmap.csv")))
    shown, missing = drawn([Mark(Row(r["label"], n=int(r["n"])), r["label"]) for r in rows])
    assert [m.label for m in shown] == [rows[0]["label"], rows[2]["label"]]  # the two steps that ran
    assert len(missing) == len(rows) - 2 and rows[5]["label"] in missing


@pytest.mark.parametrize("script", ["status.py", "collect_results.py"])
def test_a_script_read_through_head_goes_quiet_once_its_reader_has_gone_and_finishes_its_work(tmp_path, script):
    """`python scripts/status.py SWEEP | head` (the pipe's reading end closed here at once): no BrokenPipeError
    traceback, and a script that writes files (collect_results.py copies records) still writes every one."""
    runs = ROOT / "docs/results/femto_cpu/runs"
    args = [runs, "--epochs"] if script == "status.py" else [runs, tmp_path / "copy"]
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, ROOT / "scripts" / script, *args], cwd=ROOT, env=clean_env(),
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")
    if script == "collect_results.py":
        copied = sorted(p.relative_to(tmp_path / "copy") for p in (tmp_path / "copy").rglob("metrics.json"))
        assert copied == sorted(p.relative_to(runs) for p in runs.rglob("metrics.json")) and len(copied) == 51


def test_a_test_process_killed_before_its_exit_leaves_no_folder_behind_the_next_suite():
    """Each test process's runs go to a folder of its own in the temporary directory (several GB for a whole suite),
    removed at its exit; a process killed first (SIGKILL, a CI timeout) cannot: the next suite removes the folders
    whose process is gone, and leaves those of live processes and any other folder."""
    import tempfile

    from conftest import HOST, remove_the_folders_of_ended_test_processes
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    prefix, tmp = f"roadmap-selftest-{os.getpid()}-", Path(tempfile.gettempdir())
    names = (f"{ended.pid}.{HOST}-ab12", f"{os.getpid()}.{HOST}-cd34", "ef56-gh78",
             f"{ended.pid}.0another-ij90")  # another host's process (a container sharing /tmp): not ours to judge
    folders = {name: tmp / f"{prefix}{name}" for name in names}
    try:
        for folder in folders.values():
            (folder / "runs").mkdir(parents=True)
            (folder / "runs/checkpoint.pt").write_bytes(b"x" * 1000)
        remove_the_folders_of_ended_test_processes(prefix)
        assert {name: f.exists() for name, f in folders.items()} == dict(zip(names, (False, True, True, True)))
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


def test_two_image_folders_never_share_a_run_while_a_moved_dataset_resumes_its_own(folder, tmp_path, monkeypatch):
    """An image folder's root is its dataset: a second folder got the first one's run directory, found it
    completed and did nothing, its record the first folder's numbers. Now its path names the folder (and a hash of
    its full path), the same folder however written shares it, and a checkpoint of one folder is never resumed on
    another; a named dataset's root stays a place (moving Fashion-MNIST resumes the same run)."""
    from roadmap import load_config
    from roadmap.config.command_line import compose_single
    from roadmap.config.compose import compose_dict
    from roadmap.errors import ConfigMismatch
    from roadmap.train.checkpoint import check_same_config, config_dict
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    monkeypatch.chdir(tmp_path)

    def run_dir(*overrides):
        return compose_single(["step=micro/gelu", "data.num_classes=3", *overrides])[1]

    def data_part(d):  # <output dir>/runs/<data>/...
        return d.relative_to(Path(os.environ["ROADMAP_OUTPUT_DIR"]) / "runs").parts[0]
    a, b = run_dir("data=image_folder", f"data.root={folder}"), run_dir("data=image_folder", f"data.root={other}")
    assert a != b and data_part(a).startswith("image_folder-images-") and data_part(b).startswith("image_folder-other-")
    assert run_dir("data=image_folder", "data.root=images/../images") == a  # the same folder, written otherwise
    for sweep in ([], ["+sweep=leave_one_out"]):  # a sweep's folder too
        cfg = compose_dict(None, ["data=image_folder", f"data.root={other}", "data.num_classes=3", *sweep], hydra=True)
        assert Path(cfg.hydra.sweep.dir).name.startswith(data_part(b) + "-"), cfg.hydra.sweep.dir
    assert run_dir("data=fashion_mnist", "data.root=/x") == run_dir("data=fashion_mnist", "data.root=/y")
    cfg = {root: config_dict(load_config("micro/gelu", ["data=image_folder", f"data.root={root}",
                                                         "data.num_classes=3"])) for root in (folder, other)}
    with pytest.raises(ConfigMismatch, match=f"data.root: '{folder}' -> '{other}'"):
        check_same_config(cfg[folder], cfg[other], tmp_path)
    moved = {root: config_dict(load_config("micro/gelu", ["data=fashion_mnist", f"data.root={root}"]))
             for root in ("/x", "/y")}
    check_same_config(moved["/x"], moved["/y"], tmp_path)  # nothing raised: the same dataset elsewhere


@pytest.mark.slow
def test_the_suite_on_a_disk_without_room_for_its_runs_stops_before_any_test_naming_the_folder(tmp_path):
    """CI once ran the suite with /tmp nearly full: 39 failures and 46 errors, each with a message of its own. Now the
    process that starts the tests checks the temporary directory's free space first and stops, with one line naming
    the folder, what it has and how to go on (conftest.MIN_FREE_GB, measured; ROADMAP_TESTS_MIN_FREE_GB sets it)."""
    from conftest import tmp_space_problem
    test = "tests/test_layout.py::test_the_schema_stays_at_most_300_lines"
    env = clean_env(TMPDIR=str(tmp_path), ROADMAP_TESTS_MIN_FREE_GB="1e9")  # more than any disk has
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", test], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR and "passed" not in out, out
    assert f"the tests need 1e+09 GB free under {tmp_path}" in out and "ROADMAP_TESTS_MIN_FREE_GB=0" in out, out
    env.update(ROADMAP_TESTS_MIN_FREE_GB="0")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "0", "-p", "no:cacheprovider", test], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "1 passed" in proc.stdout, proc.stdout + proc.stderr
    assert "not a number" in tmp_space_problem(str(tmp_path), "2 GB")
    assert tmp_space_problem(str(tmp_path), "0") is None

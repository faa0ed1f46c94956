"""`python run.py step=...` end to end on the shipped dataset: records, W&B, resume, DDP, failures."""
import csv
import json
import shlex

import numpy as np
import pytest
import torch
from conftest import FAST, ROOT, clean_env, load, run_cli, step_config, train_cli
from omegaconf import OmegaConf
from wandb_log import run_info

from roadmap import roadmap_steps
from roadmap.data.sources import SHIPPED


@pytest.fixture(scope="module")
def gelu_run(tmp_path_factory):
    """One run of micro/gelu, seed 3, W&B offline, in a fresh output folder: (its directory, the process)."""
    run = tmp_path_factory.mktemp("gelu")
    proc = train_cli(run, "step=micro/gelu", "wandb=offline", "seed=3", f"paths.output_dir={run / 'out'}")
    return run, proc


@pytest.mark.slow
def test_a_run_completes_and_its_record_is_read_back_as_written(gelu_run):
    run, _ = gelu_run
    rec = load(run)
    assert rec.status == "completed" and rec.reason is None and rec.signal is None
    assert rec.variant == ("budget.max_train_iters=3,budget.max_eval_iters=2,train.batch_size=16,model.depths=[1,1,1,1],"
                           "model.base_width=16")  # the overrides that change what is trained, not where or how fast
    assert (rec.step, rec.seed, rec.epochs, rec.epochs_done) == ("micro/gelu", 3, 2, 2)
    for row in rec.history:
        assert 0 <= row.val_top1 <= row.val_top5 <= 100 and row.images_per_s > 0 and row.train_loss > 0
    assert json.loads((run / "metrics.json").read_text()) == rec.to_dict()  # read back as written
    assert (rec.best_top1, rec.final_top1) == (max(r.val_top1 for r in rec.history), rec.history[-1].val_top1)
    assert rec.params > 0 and rec.gmacs > 0 and rec.wall_time_s > 0
    assert rec.hardware["device"] == "cpu" and rec.git_commit
    # the processor and the instruction set torch ran on: two machines of one platform string differ in both
    assert rec.hardware["cpu_capability"] == torch.backends.cpu.get_cpu_capability() and rec.hardware["cpu"]


@pytest.mark.slow
def test_its_config_says_what_ran_beside_the_recipes_nominal_values_and_its_checkpoint_the_last_epoch(gelu_run):
    """The smoke budget's 2 epochs of the recipe's 300, the learning rate at batch 16."""
    run, _ = gelu_run
    rec, saved = load(run), OmegaConf.load(run / "config.yaml")
    assert saved.model.activation == "gelu" and saved.step.order == 12
    assert saved.schedule.epochs == rec.epochs == 2 and saved.train.epochs == 300
    assert saved.schedule.warmup_epochs == pytest.approx(20 * 2 / 300) and saved.train.warmup_epochs == 20
    assert saved.schedule.lr == rec.effective_lr == pytest.approx(4e-3 * 16 / 4096) and saved.schedule.global_batch == 16
    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == 2


@pytest.mark.slow
def test_its_offline_wandb_run_has_the_keys_a_dashboard_groups_and_filters_by(gelu_run):
    run, proc = gelu_run
    rec, saved = load(run), OmegaConf.load(run / "config.yaml")
    offline = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and rec.wandb_id in offline[0].name
    info = run_info(offline[0].parent)
    config = {k: json.loads(v) for k, v in info["config"].items() if not k.startswith("_")}
    assert info["job_type"] == "train" and info["tags"] == ["micro", "r50"]
    assert (config["regime_name"], config["undo_step"], config["step_group"], config["seed"]) == ("r50", None, "micro", 3)
    assert config["regime"]["paper"]["micro/gelu"]["top1"] == 80.62  # keys with "/" survive
    assert (config["step_order"], config["step_label"]) == (12, "ReLU -> GELU")
    assert config["schedule"] == dict(saved.schedule)
    assert {"train_loss", "val_top1", "images_per_s"} <= info["history_keys"]
    assert "wandb sync" in proc.stderr + proc.stdout


@pytest.mark.slow
def test_it_records_the_pipeline_it_chose_and_shows_a_progress_bar(gelu_run):
    run, proc = gelu_run
    rec = load(run)
    probe = rec.pipeline_probe  # auto, in-memory data: the pipeline measured faster per core here
    assert (rec.regime, rec.undo, rec.pipeline) == ("r50", None, max(probe, key=probe.get))
    assert "data.pipeline=auto chose" in proc.stderr
    assert "img_s=" in proc.stderr


@pytest.mark.slow
def test_the_offline_wandb_run_has_iterations_val_loss_console_artifacts_code_and_its_own_command(tmp_path):
    run = tmp_path / "run"
    proc = train_cli(run, "step=micro/gelu", "wandb=offline", "wandb.log_every=2", "wandb.grad_norm=true",
                     "wandb.log_checkpoints=true", "wandb.save_code=true")
    rec = load(run)
    lines = proc.stderr.strip().splitlines()  # the run's closing line is its last, after W&B's one line
    assert "completed micro/gelu seed 0: final top-1" in lines[-1], lines[-3:]
    assert "W&B run roadmap/" in lines[-2] and "upload it with: wandb sync " in lines[-2], lines[-3:]
    assert not any(line.startswith("wandb: You can sync") or "Run history:" in line for line in lines)
    rows = list(csv.DictReader(open(run / "summary.csv")))  # one row per epoch beside metrics.json
    assert [int(r["epoch"]) for r in rows] == [h.epoch for h in rec.history] == [1, 2]
    assert [float(r["val_top1"]) for r in rows] == [h.val_top1 for h in rec.history]
    assert all(row.val_loss > 0 for row in rec.history)  # plain cross-entropy over the validation images
    (offline,) = (run / "wandb").glob("offline-run-*")
    info = run_info(offline)
    assert {"train/loss", "train/lr", "train/grad_norm", "global_step", "val_loss", "val_top1"} <= info["history_keys"]
    cfg = {k: json.loads(v) for k, v in info["config"].items()}
    assert (cfg["params"], cfg["gmacs"], cfg["git_commit"]) == (rec.params, rec.gmacs, rec.git_commit)
    assert "epoch 1/2" in info["console"] and "micro/gelu seed 0 epoch 2/2" in info["console"]  # log and bar
    models = [a for a in info["artifacts"] if a[0] == "model"]
    assert [sorted(aliases) for *_, aliases, _ in models] == [["epoch1", "latest"], ["epoch2", "latest"]]
    assert all(files == ["checkpoint.pt"] and name == f"checkpoint-{rec.wandb_id}" for _, name, _, files in models)
    (code,) = [files for kind, _, _, files in info["artifacts"] if kind == "code"]
    assert {"run.py", "src/roadmap/train/loop.py", "configs/step/micro/gelu.yaml"} <= set(code)
    assert not any(f.startswith((".venv/", "outputs/", "docs/results/")) for f in code)
    # the run's own command line reruns this very run (one job of a sweep too): here it finds it completed
    command = shlex.split(cfg["command"])
    assert command[:2] == ["python", "run.py"] and command[-1] == f"hydra.run.dir={run}"
    again = run_cli(*command[1:], check=True)
    assert "already completed" in again.stderr + again.stdout and load(run) == rec


@pytest.mark.slow
def test_running_the_same_command_again_does_not_train_again(tmp_path):
    train_cli(tmp_path, "step=macro/patchify")
    first = load(tmp_path)
    proc = train_cli(tmp_path, "step=macro/patchify")
    assert "already completed" in proc.stderr + proc.stdout
    assert load(tmp_path) == first


@pytest.mark.slow
def test_keeping_only_records_deletes_the_checkpoint_once_the_run_completes_and_a_rerun_finds_it_done(tmp_path):
    proc = train_cli(tmp_path, "step=macro/patchify", "system.keep_checkpoint=false")
    rec = load(tmp_path)
    assert rec.status == "completed" and rec.epochs_done == 2 and (tmp_path / "predictions.npz").is_file()
    assert not (tmp_path / "checkpoint.pt").exists() and "completed macro/patchify" in proc.stderr
    again = train_cli(tmp_path, "step=macro/patchify")  # keep_checkpoint is where the run keeps files: the same run
    assert "already completed" in again.stderr and "no checkpoint kept" in again.stderr and load(tmp_path) == rec


@pytest.mark.slow
def test_torchrun_trains_with_ddp_on_cpu(tmp_path):
    # 1001 validation images in batches of 250: rank 0 evaluates 3 batches, rank 1 two (BatchNorm buffers);
    # two processes, since one (world 1) takes the same path with nothing to shard
    world = 2
    d = dict(np.load(SHIPPED))
    d["x_val"], d["y_val"] = np.concatenate([d["x_val"], d["x_val"][:1]]), np.concatenate([d["y_val"], d["y_val"][:1]])
    np.savez(tmp_path / "odd.npz", **d)
    proc = run_cli("--standalone", f"--nproc_per_node={world}", ROOT / "run.py", *FAST, "step=macro/patchify",
                   "budget.max_eval_iters=null", "train.batch_size=250", f"data.root={tmp_path / 'odd.npz'}",
                   f"hydra.run.dir={tmp_path / 'run'}", module="torch.distributed.run", timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    rec = load(tmp_path / "run")
    assert rec.status == "completed" and rec.hardware["world_size"] == world
    assert all(row.val_images == 1001 for row in rec.history)  # shards add up, none padded or lost


@pytest.mark.slow
def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    # the classic recipe with a x1e12 "decay" after epoch 2 blows the weights up in epoch 2 or 3
    proc = train_cli(tmp_path, "step=baseline/resnet50", "budget.epochs=null", "train.epochs=3",
                     "train.decay_milestones=[2]", "train.decay_rate=1e12", check=False)
    assert proc.returncode != 0
    rec = load(tmp_path)
    assert rec.status == "failed" and rec.reason.startswith("NonFiniteLoss")
    assert f"the last good checkpoint ({tmp_path / 'checkpoint.pt'}, epoch " in proc.stderr
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert 1 <= state["epoch"] < 3 and state["epoch"] == rec.epochs_done
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


@pytest.mark.slow
def test_an_unknown_step_or_dataset_lists_the_valid_ones_and_creates_nothing(tmp_path):
    proc = train_cli(tmp_path / "a", "step=micro/gelux", check=False)
    assert proc.returncode != 0 and "unknown step 'micro/gelux' (did you mean micro/gelu?)" in proc.stderr
    assert "micro/gelu, " in proc.stderr and "large_kernel/k7, " in proc.stderr
    proc = train_cli(tmp_path / "b", "data=cifar1000", check=False)
    assert proc.returncode != 0 and "unknown data 'cifar1000'" in proc.stderr and "cifar100, " in proc.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.slow
def test_missing_dataset_files_say_where_they_were_looked_for(tmp_path):
    proc = train_cli(tmp_path, "data=fashion_mnist", f"data.root={tmp_path / 'nowhere'}", check=False)
    assert proc.returncode != 0
    assert f"{tmp_path / 'nowhere'}/train-images-idx3-ubyte.gz" in proc.stderr
    assert not (tmp_path / "metrics.json").exists()  # checked before the run starts: nothing written
    proc = train_cli(tmp_path / "c", "data=cifar10", f"data.root={tmp_path / 'c10'}", "data.download=false",
                     check=False)
    assert proc.returncode != 0 and str(tmp_path / "c10" / "cifar-10-batches-py") in proc.stderr
    assert "cifar-10-python.tar.gz" in proc.stderr


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_named_and_kept(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "checkpoint.pt").write_bytes(b"not a checkpoint")
    proc = train_cli(tmp_path, "step=micro/gelu", check=False)
    assert proc.returncode != 0 and str(tmp_path / "checkpoint.pt") in proc.stderr
    assert (tmp_path / "checkpoint.pt").read_bytes() == b"not a checkpoint"


@pytest.mark.slow
def test_resuming_with_another_config_is_refused_and_touches_nothing(tmp_path):
    train_cli(tmp_path, "step=micro/gelu")
    before = (tmp_path / "metrics.json").read_text(), (tmp_path / "checkpoint.pt").read_bytes()
    proc = train_cli(tmp_path, "step=micro/gelu", "train.base_lr=0.1", check=False)
    assert proc.returncode != 0 and "train.base_lr: 0.004 -> 0.1" in proc.stderr
    assert ((tmp_path / "metrics.json").read_text(), (tmp_path / "checkpoint.pt").read_bytes()) == before


@pytest.mark.slow
def test_wandb_online_without_an_api_key_falls_back_offline_and_training_goes_on(tmp_path):
    env = clean_env(HOME=str(tmp_path / "home"), WANDB_INIT_TIMEOUT="20")
    proc = train_cli(tmp_path / "run", "step=micro/gelu", "wandb=online", env=env)
    assert proc.returncode == 0
    assert load(tmp_path / "run").status == "completed"
    assert list((tmp_path / "run" / "wandb").glob("offline-run-*"))


@pytest.mark.slow
def test_ema_is_off_for_the_roadmap_and_evaluated_beside_the_model_when_on(tmp_path):
    train_cli(tmp_path / "on", "step=micro/gelu", "train.ema=true", "train.ema_decay=0.5")
    assert all(0 <= row.val_top1_ema <= 100 for row in load(tmp_path / "on").history)
    assert torch.load(tmp_path / "on" / "checkpoint.pt", weights_only=False)["ema"] is not None
    train_cli(tmp_path / "off", "step=micro/gelu")
    assert load(tmp_path / "off").history[0].val_top1_ema is None


def test_the_cuda_switches_train_on_the_cpu_when_asked(tmp_path):
    """bf16 autocast, channels_last and torch's fused AdamW: off on the CPU unless asked (amp and the fused
    optimizer default to CUDA only), and when asked each path trains to a completed record with finite numbers."""
    import math

    import torch

    from roadmap import load_config
    from roadmap.train.distributed import Context
    from roadmap.train.lifecycle import train
    from roadmap.train.trainer import build_trainer
    tiny = [o for o in FAST if not o.startswith("budget.max_train_iters")] + ["budget.max_train_iters=2",
                                                                             "step=micro/separate_downsample"]
    ctx = Context(0, 1, torch.device("cpu"))
    plain = build_trainer(load_config(None, tiny), ctx, None)
    assert not isinstance(plain.autocast, torch.autocast) and not plain.optimizer.defaults.get("fused")
    asked = load_config(None, [*tiny, "system.amp=true", "system.fused_optimizer=true", "system.channels_last=true"])
    t = build_trainer(asked, ctx, None)
    assert isinstance(t.autocast, torch.autocast) and t.autocast.fast_dtype == torch.bfloat16
    assert t.optimizer.defaults.get("fused") is True
    assert t.model.stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, _ = next(iter(t.train_batches))
    assert x.is_contiguous(memory_format=torch.channels_last)
    with t.autocast:
        assert t.net(x).dtype == torch.bfloat16
    record = train(asked, tmp_path)
    assert record.status == "completed" and all(math.isfinite(h.train_loss) for h in record.history)


def test_a_completed_record_without_its_checkpoint_is_not_trained_again(tmp_path):
    """Committed results copied back into a sweep folder (no checkpoints): a relaunch trains only the missing
    runs. A record whose config.yaml is another config's is not trusted, and that run trains."""
    from roadmap import load_config
    from roadmap.train.lifecycle import train
    tiny = [o for o in FAST if not o.startswith("budget.max_train_iters")] + ["budget.max_train_iters=1",
                                                                             "budget.max_eval_iters=1"]
    cfg = load_config("micro/gelu", tiny)
    first = train(cfg, tmp_path)
    (tmp_path / "checkpoint.pt").unlink()
    before = (tmp_path / "metrics.json").read_bytes()
    assert train(cfg, tmp_path).history == first.history
    assert (tmp_path / "metrics.json").read_bytes() == before and not (tmp_path / "checkpoint.pt").exists()
    other = load_config("micro/gelu", [*tiny, "seed=1"])
    assert train(other, tmp_path).seed == 1 and (tmp_path / "checkpoint.pt").exists()  # trained: not its record


def test_progress_is_redrawn_in_place_only_for_a_lone_run_on_a_terminal():
    """Side by side or into a file, each redraw of the bar is a whole line (control characters dropped)."""
    import io

    from roadmap.train.progress import Lines, in_lines

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert not in_lines(1, Terminal()) and in_lines(2, Terminal()) and in_lines(1, io.StringIO())
    out = io.StringIO()
    writer = Lines(out)
    for text in ("\rmicro/gelu seed 0 epoch 1/2:  40% 4/10\x1b[A", "\r" + " " * 40 + "\r", "\n"):
        assert writer.write(text) == len(text)
    assert out.getvalue() == "micro/gelu seed 0 epoch 1/2:  40% 4/10\n"


@pytest.mark.parametrize("overrides", [[f"step={s.name}"] for s in roadmap_steps()] + [
    ["step=convnext_t", "regime=r200"], ["step=micro/gelu", "+experiment=femto_converged_cpu"],
    ["step=baseline/resnet50", "+experiment=femto_search", "train.base_lr=0.1"],
    ["step=micro/gelu", "data=image_folder", "data.root=/data/imagenet", "data.num_classes=1000"]], ids=lambda o: " ".join(o))
def test_the_config_kept_in_checkpoints_and_config_yaml_is_omegaconfs_plain_form_of_it(overrides):
    """config_dict converts the typed config itself (OmegaConf's conversion took 25 ms, at every epoch); what it gives
    is what OmegaConf gives, to the types (YAML writes 1.0 and 1 apart), for every step and each regime's."""
    from roadmap import load_config
    from roadmap.train.checkpoint import config_dict

    step, *more = overrides
    cfg = load_config(None, overrides) if more else step_config(step.removeprefix("step="))  # composed once per process
    mine = config_dict(cfg)
    omegaconfs = OmegaConf.to_container(OmegaConf.structured(cfg), enum_to_str=True)
    assert mine == omegaconfs and OmegaConf.to_yaml(mine) == OmegaConf.to_yaml(omegaconfs)


def test_a_checkpoint_written_before_a_setting_existed_resumes_as_what_the_code_did_then(tmp_path):
    """A saved config without the settings added since (ADDED) compares as the code that wrote it ran; with a
    value that differs from it, or without a setting that was always there, it is another configuration."""
    from roadmap import load_config
    from roadmap.errors import ConfigMismatch
    from roadmap.train.checkpoint import ADDED, check_same_config, config_dict

    current = config_dict(load_config("baseline/resnet50"))
    older = json.loads(json.dumps(current))
    for key in ADDED:
        section, name = key.split(".")
        del older[section][name]
    check_same_config(older, current, tmp_path)  # nothing raised: the defaults of then are today's values
    changed = json.loads(json.dumps(current))
    changed["train"]["crop_padding"] = 0
    with pytest.raises(ConfigMismatch, match="train.crop_padding: 4 -> 0"):
        check_same_config(older, changed, tmp_path)
    del older["model"]["kernel_size"]  # never added: a config without it is not one this code wrote
    with pytest.raises(ConfigMismatch, match="model.kernel_size: None -> 3"):
        check_same_config(older, current, tmp_path)

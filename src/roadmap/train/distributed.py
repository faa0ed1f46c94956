"""Processes and devices: torchrun's environment, NCCL on CUDA, gloo on the CPU."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import RoadmapError
from ..schema import SystemConfig


@dataclass
class Context:
    rank: int
    world: int
    device: torch.device
    side_by_side: int = 1  # runs sharing this machine's cores and terminal (a sweep's jobs)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, values: list[float]) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t)
        return t.tolist()

    def gather_strided(self, part: torch.Tensor) -> torch.Tensor:
        """The whole of a dataset split as `range(rank, n, world)`, from each process's part (rows
        in order)."""
        if self.world == 1:
            return part
        parts: list = [None] * self.world
        dist.all_gather_object(parts, part.cpu())
        whole = torch.empty((sum(len(q) for q in parts), *part.shape[1:]), dtype=part.dtype)
        for rank, q in enumerate(parts):
            whole[rank::self.world] = q
        return whole


def _export_slurm_tasks() -> None:
    """A submitit job of several tasks (hydra/launcher=slurm): set what torchrun would set, from
    SLURM's."""
    if "RANK" not in os.environ and os.environ.get("SUBMITIT_EXECUTOR") == "slurm" \
            and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        from submitit.helpers import TorchDistributedEnvironment
        TorchDistributedEnvironment().export(set_cuda_visible_devices=False)


def check_device(system: SystemConfig) -> bool:
    """Whether the run uses CUDA; RoadmapError if it asks for CUDA where there is none."""
    cuda = system.device.startswith("cuda") or (
        system.device == "auto" and torch.cuda.is_available()
    )
    if cuda and not torch.cuda.is_available():
        raise RoadmapError(
            f"system.device={system.device!r} is not allowed here: no CUDA device is available "
            "(torch.cuda.is_available() is False); use system.device=auto or cpu"
        )
    return cuda


def setup(system: SystemConfig, jobs_side_by_side: int = 1) -> Context:
    _export_slurm_tasks()
    # processes on this machine at once: a launcher's jobs side by side, each with torchrun's local
    # processes
    torch.set_num_threads(
        system.resolve_threads(jobs_side_by_side * int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    )
    world, rank = int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = check_device(system)
    if cuda:
        device = torch.device(system.device if ":" in system.device else f"cuda:{local}")
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if system.deterministic:  # reproducible kernels, at some cost in speed
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    # launched by torchrun, any world size
    if "MASTER_ADDR" in os.environ and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return Context(rank, world, device, jobs_side_by_side)


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()

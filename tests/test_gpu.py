"""On a CUDA machine: bf16 autocast, channels_last, fused AdamW and torch.compile in a real run. Skipped on CPU."""
import pytest
import torch
from conftest import load, train_cli

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("compile_", [False, True])
def test_a_cuda_run_in_bf16_channels_last(tmp_path, compile_):
    train_cli(tmp_path, "step=micro/separate_downsample", "system.device=cuda", f"system.compile={compile_}")
    rec = load(tmp_path)
    assert rec.status == "completed" and rec.hardware["gpu"] == torch.cuda.get_device_name(0)
    assert all(row.gpu_mem_gb > 0 for row in rec.history)

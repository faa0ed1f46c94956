"""The prepared GPU command runs end to end on the CPU with tiny settings, so it cannot break unnoticed."""
import subprocess
import tarfile

import pytest
from conftest import ROOT, clean_env


@pytest.mark.slow
def test_the_gpu_check_script_runs_every_phase_and_packs_one_archive(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "scripts/gpu_check.sh"), str(tmp_path), "300", "--tiny"], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    archive = tmp_path / "gpu_check.tar.gz"
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        log = tar.extractfile("gpu_check/log.txt").read().decode()
    for part in ("eager_32_r50", "eager_32_femto", "real_32_femto", "compiled_32_femto"):
        assert any(n.startswith(f"gpu_check/{part}") and n.endswith("benchmark.json") for n in names), (part, log)
    assert any(n.endswith("metrics.json") for n in names) and not any(n.endswith("checkpoint.pt") for n in names)
    for phase in ("eager 32 r50", "eager 32 femto", "real pipeline 32 femto",
                  "compiled 32 femto micro/separate_downsample", "femto study"):
        assert f"end {phase}: exit 0" in log, log[-3000:]
    assert "ratio micro/separate_downsample / timm/convnext_femto" in log

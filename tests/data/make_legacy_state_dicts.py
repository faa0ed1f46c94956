"""How legacy_state_dicts.pt was made, with the code of commit cc831c8 (a block's layers an unnamed nn.Sequential,
`branch.N.` keys): one small network per roadmap step, its state dict with every tensor random, an input and its
logits in eval mode. tests/test_model.py loads them into today's networks. To make it again:
    git worktree add /tmp/old cc831c8 && PYTHONPATH=/tmp/old/src python tests/data/make_legacy_state_dicts.py \
        tests/data/legacy_state_dicts.pt
"""
import sys

import torch

from roadmap.config.compose import load_config
from roadmap.config.steps import roadmap_steps
from roadmap.model import build_model

out = {}
g = torch.Generator().manual_seed(0)
x = torch.randn(2, 3, 32, 32, generator=g)
for step in [s.name for s in roadmap_steps()]:
    cfg = load_config(step, ["model.depths=[1,2]", "model.base_width=8", "model.drop_path=0",
                             "model.layer_scale=0.5" if "separate" in step else "model.drop_path=0"])
    model = build_model(cfg).eval()
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5 if name.endswith("running_var")
                        else torch.randn(t.shape, generator=g) * 0.3)
        out[step] = {"state": model.state_dict(), "logits": model(x)}
out["input"] = x
torch.save(out, sys.argv[1])
print(len(out), sum(t.numel() for v in out.values() if isinstance(v, dict) for t in v["state"].values()))

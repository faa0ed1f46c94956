"""roadmap: the ConvNeXt modernization roadmap (ResNet-50 to ConvNeXt-T) as one parameterized
network.

    import roadmap
    cfg = roadmap.load_config("micro/gelu", overrides=["model.kernel_size=9"])  # a typed, checked RunConfig
    model = roadmap.build_model(cfg)

Packages, each importing only those listed after it: analysis (charts of finished runs), train (a
run's life, the loop), config (Hydra composition, the steps), data and model, and at the bottom
schema, record and errors. Names here load their package on first use, so `import roadmap.model`
needs neither Hydra nor W&B."""
from importlib import import_module

_NAMES = {"load_config": "config.compose", "roadmap_steps": "config.steps", "build_model": "model",
          "count_gmacs": "model", "count_params": "model", "Network": "model", "ModelConfig": "schema",
          "RunConfig": "schema", "RunRecord": "record"}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name in _NAMES:
        return getattr(import_module(f".{_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'roadmap' has no attribute {name!r}")

"""roadmap: the ConvNeXt modernization roadmap (ResNet-50 to ConvNeXt-T) as one parameterized network."""
from .compose import load_config
from .config import ModelConfig, RunConfig
from .measure import count_gmacs, count_params
from .model import Network, build_model
from .steps import roadmap_steps

__all__ = ["load_config", "build_model", "count_gmacs", "count_params", "roadmap_steps",
           "ModelConfig", "RunConfig", "Network"]

"""The network: one parameterized block and network (network.py), its size and cost (measure.py),
and weights copied from the reference implementations (weights.py). Imports only the schema."""
from .measure import check_input_size, count_gmacs, count_params, describe, feature_sizes
from .network import Block, LayerNorm2d, Network, build_model
from .weights import copy_weights_from, upgrade_state_dict

__all__ = ["Block", "LayerNorm2d", "Network", "build_model", "check_input_size", "count_gmacs", "count_params",
           "describe", "feature_sizes", "copy_weights_from", "upgrade_state_dict"]

"""Errors a user can act on: the runner prints their message, not a traceback."""


class RoadmapError(RuntimeError):
    pass


class DataError(RoadmapError):
    """Missing or unusable data: the message says where we looked and what to do."""


class CorruptCheckpoint(RoadmapError):
    """A checkpoint that cannot be read. It is kept as it is, never overwritten."""


class ConfigMismatch(RoadmapError):
    """The run directory holds a checkpoint of another configuration."""


class NonFiniteLoss(RoadmapError):
    """The loss became NaN or infinite."""

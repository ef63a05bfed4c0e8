"""User-facing errors of featcache that need no heavy imports to catch.

Each message is one line naming the file or value and what to do.
"""


class WeightsError(ValueError):
    """Pretrained weights are unavailable or do not fit the backbone."""

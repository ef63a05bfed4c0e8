"""Errors a user can act on: each message is one line naming the file or value."""


class WeightsError(ValueError):
    """Pretrained weights are unavailable or do not fit the backbone."""

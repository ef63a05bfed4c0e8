"""Where featcache keeps files it derives once and reuses (converted weights, ...)."""

import os
from pathlib import Path


def featcache_home() -> Path:
    """``$FEATCACHE_HOME`` if set, else ``~/.cache/featcache`` (not created here)."""
    return Path(os.environ.get("FEATCACHE_HOME") or Path.home() / ".cache" / "featcache").expanduser()

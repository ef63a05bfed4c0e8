"""The errors featcache raises for a user's mistake, under one base class that needs no heavy imports.

Each message is one line naming the file or value and what to do. Every class also derives
from the built-in error a caller would expect (``ValueError`` for bad input, ``RuntimeError``
for a step that cannot run), so ``except ValueError`` keeps working.
"""


class FeatcacheError(Exception):
    """Base of featcache's user errors: the command line prints the message as one line."""


class WeightsError(FeatcacheError, ValueError):
    """Pretrained weights are unavailable or do not fit the backbone."""


class ModelError(FeatcacheError, ValueError):
    """A saved model cannot be made, loaded or applied as asked."""


class CacheError(FeatcacheError, ValueError):
    """A cache cannot be used as asked; the message says which file and what to do."""


class CacheLocked(CacheError):
    """Another process is writing the cache."""


class UsageError(FeatcacheError, ValueError):
    """A value that cannot be used as given: a name, an option, a file's contents."""


def one_line(error: BaseException, limit: int = 300) -> str:
    """A library's error as one line of at most ``limit`` characters (its class name if it says nothing)."""
    return " ".join(str(error).split())[:limit] or type(error).__name__

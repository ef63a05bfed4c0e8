"""featcache: transfer learning on images by cached features.

Run each frozen backbone once over a dataset, keep the pooled embeddings in an
HDF5 cache, and train interchangeable light heads on the cache in seconds.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("featcache")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

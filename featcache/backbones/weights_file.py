"""Loading a user's weights file into a network: all of it, or a clear error."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Union

from featcache.errors import WeightsError

if TYPE_CHECKING:
    import keras


def load_weights_strictly(model: keras.Model, path: Union[str, Path], backbone: str) -> None:
    """``model.load_weights(path)``, refusing files that fit only in part.

    Keras may skip parts of a file that do not match and merely warn, leaving those
    layers at random initialisation; here any such warning is an error too.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*(Skipping|retain their freshly-initialized).*")
            model.load_weights(path)
    except Exception as error:  # h5py, Keras and OS errors all mean the same thing here
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise WeightsError(
            f"{path}: cannot load it into {backbone} (without its classifier): {reason}; "
            "use a weights file saved from the same architecture"
        ) from None

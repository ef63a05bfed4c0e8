"""Test helpers for the Keras heads."""

from heads._keras import import_keras


def keras_in_order(monkeypatch) -> None:
    """Make in-memory Keras fits keep the row order (the reference for ``shuffle=False``)."""
    model_class = import_keras().Model
    fit = model_class.fit

    def in_order(self, *args, **kwargs):
        return fit(self, *args, **{**kwargs, "shuffle": False})

    monkeypatch.setattr(model_class, "fit", in_order)

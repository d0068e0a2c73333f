"""Run folders and reports: ``run.json``, ``results.json``, ``results.md`` and plots.

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
import math
import os
import platform
import shutil
import uuid
from pathlib import Path

from risc_tf.plots import plot_all

__all__ = [
    "RUN_FILE",
    "ensure_output_dir",
    "finish_run",
    "machine_info",
    "now_iso",
    "prepare_output_dir",
    "render_markdown",
    "summarize",
    "write_results",
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
                "--overwrite (overwrite=True) to delete it and start again"
            )
        shutil.rmtree(path)
    try:
        path.mkdir(parents=True, exist_ok=True)  # again, if an earlier run was deleted
        run = {"id": uuid.uuid4().hex[:12], "status": "running", "started": now_iso(),
               "pid": os.getpid()}
        if config is not None and dataclasses.is_dataclass(config):
            run["config"] = {k: (str(v) if isinstance(v, os.PathLike) else v)
                             for k, v in dataclasses.asdict(config).items()}
        (path / RUN_FILE).write_text(json.dumps(run, indent=2, default=list))
    except PermissionError as err:
        raise PermissionError(f"output folder {path} is not writable: {err}") from err
    run.pop("config", None)
    return run


def finish_run(output: str | os.PathLike, results: dict) -> None:
    """Mark the run in ``output`` complete (listing its files)."""
    path = Path(output)
    run = json.loads((path / RUN_FILE).read_text())
    run.update(status="complete", finished=now_iso(),
               wall_time_s=results["run"].get("wall_time_s"),
               files=sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file()))
    (path / RUN_FILE).write_text(json.dumps(run, indent=2))


def machine_info() -> dict:
    """The machine a run used: CPU, cores, memory, accelerators and library versions."""
    import keras
    import numpy as np
    import sklearn
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
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


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def summarize(results: dict) -> dict:
    """Table 1, Table 2 and the plain-words verdict, as JSON-ready data."""
    ev, paper = results["evaluation"], results.get("paper") or {}
    up, rot = ev["upright"], ev["rotated"]
    rows = [
        {"row": "RotNet accuracy, rotated test", "acc": results["rotnet"]["rotated_test_acc"],
         "auc": None, "paper_acc": paper.get("rotnet_acc")},
        {"row": "Upright test, classifier", "acc": up["classifier"]["acc"],
         "auc": up["classifier"]["auc"], "paper_acc": paper.get("upright_acc")},
        {"row": "Rotated test, classifier (no correction)", "acc": rot["classifier"]["acc"],
         "auc": rot["classifier"]["auc"], "paper_acc": None},
    ]
    for m in rot:
        if m != "classifier":
            rows.append({"row": f"Rotated test, {m}", "acc": rot[m]["acc"], "auc": rot[m]["auc"],
                         "paper_acc": paper.get("risc_rotated_acc") if m == "risc_hard" else None})
    ranking = sorted(rot, key=lambda m: (-rot[m]["acc"], -(rot[m]["auc"] or 0.0)))
    best = ranking[0]
    ties = [m for m in ranking[1:] if math.isclose(rot[m]["acc"], rot[best]["acc"])]
    verdict = (
        f"On the randomly rotated test set the most accurate method is {best} "
        f"(ACC {rot[best]['acc']:.3f}, AUC {_fmt(rot[best]['auc'])})"
        + (f", tied with {', '.join(ties)}" if ties else "")
        + ". Ranking by ACC: "
        + ", ".join(f"{m} {rot[m]['acc']:.3f}" for m in ranking) + "."
    )
    train = results["training"]
    time_rows = []
    for name, t in results["timing"].items():
        trained = {"tta": "classifier", "risc_hard": None, "risc_soft": None}.get(name, name)
        if name.startswith("risc"):
            train_s = train["rotnet"]["train_time_s"] + train["classifier"]["train_time_s"]
        else:
            train_s = train[trained]["train_time_s"]
        time_rows.append({"model": name, "train_time_s": train_s, **t})
    return {
        "table1": {"split_sizes": results["dataset"]["split_sizes"], "rows": rows},
        "table2": {"rows": time_rows, "machine": results["machine"]},
        "ranking_rotated": ranking,
        "verdict": verdict,
    }


def _table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) if not isinstance(v, str) else v for v in r) + " |"
              for r in rows]
    return lines


def render_markdown(results: dict) -> str:
    """``results.md``: Tables 1 and 2, per-angle accuracy, verdict, curves, settings."""
    s, d, cfg = results["summary"], results["dataset"], results["config"]
    m, run = results["machine"], results["run"]
    sizes = d["split_sizes"]
    subset = "" if sizes == d["full_split_sizes"] else " (a subset; full: " + " / ".join(
        str(d["full_split_sizes"][k]) for k in ("train", "val", "test")) + ")"
    out = [
        f"# RISC reproduction: {d['name']}", "",
        f"Run `{run['id']}`, started {run['started']}, wall time {run['wall_time_s']:.0f} s. "
        f"Backbone `{cfg['backbone']}` (weights: {cfg['weights'] or 'none, from scratch'}), "
        f"input {cfg['input_size']}x{cfg['input_size']}, at most {cfg['epochs']} epochs per model "
        f"(early-stopping patience {cfg['patience']}), batch {cfg['batch_size']}, "
        f"seed {cfg['seed']}.", "",
        f"Machine: {m['cpu']}, {m['cores_available']} cores, {m['memory_gib']} GiB, "
        f"GPUs: {', '.join(m['gpus']) or 'none'}; TensorFlow {m['tensorflow']}, "
        f"Keras {m['keras']}.", "",
        "Angle set (RotNet and rotated test): "
        + ", ".join(f"{a:g}" for a in results["angles"]["rotnet"]) + " degrees.", "",
        "## Table 1", "",
        f"Split sizes train / val / test: {sizes['train']} / {sizes['val']} / {sizes['test']}"
        f"{subset}. The paper column holds the numbers the RISC paper reports, for "
        "comparison only; they were not measured here.", "",
    ]
    out += _table(["", "ACC (this run)", "AUC (this run)", "ACC (paper)"],
                  [[r["row"], r["acc"], r["auc"], r["paper_acc"]] for r in s["table1"]["rows"]])
    out += ["", f"**Verdict.** {s['verdict']}", "", "## All methods, upright and rotated test", ""]
    ev = results["evaluation"]
    out += _table(["method", "upright ACC", "upright AUC", "rotated ACC", "rotated AUC"],
                  [[f"{k}: {results['methods'][k]}", ev["upright"][k]["acc"],
                    ev["upright"][k]["auc"], ev["rotated"][k]["acc"], ev["rotated"][k]["auc"]]
                   for k in ev["rotated"]])
    angles = list(results["rotnet"]["per_angle_acc"])
    out += ["", "## Accuracy per true rotation (rotated test set)", ""]
    per = [["RotNet (angle)", *results["rotnet"]["per_angle_acc"].values()]]
    per += [[k, *[r["per_angle_acc"].get(a) for a in angles]] for k, r in ev["rotated"].items()]
    out += _table(["method", *[f"{a} deg" for a in angles]], per)
    out += ["", "## Table 2: time", ""]
    out += _table(["model / method", "training (s)", "inference, batched (ms/sample)",
                   "inference, one at a time (ms/sample)"],
                  [[r["model"], f"{r['train_time_s']:.1f}", f"{r['batched_ms_per_sample']:.2f}",
                    f"{r['single_ms_per_sample']:.2f}"] for r in s["table2"]["rows"]])
    out += ["", "RISC training time is the RotNet's plus the classifier's; TTA reuses the "
            "upright classifier. Inference includes the rotated-test images already at model "
            "input size; batches of 256.", "", "## Training", ""]
    rows = []
    for name, t in results["training"].items():
        h = t["history"]
        rows.append([name, t["epochs_run"], t["best_epoch"], h["accuracy"][-1],
                     (h.get("val_accuracy") or [None])[-1], t["best_val_accuracy"],
                     f"{t['train_time_s']:.1f}"])
    out += _table(["model", "epochs run", "best epoch", "last train ACC", "last val ACC",
                   "best val ACC", "time (s)"], rows)
    out += ["", "Validation accuracy is measured after BatchNorm statistics are re-estimated "
            "on training batches at the end of each epoch (`risc_tf.training`), so it should "
            "track training accuracy; compare the two columns above and the curves below.", "",
            "## Figures", ""]
    out += [f"![{name}]({file})" for name, file in results["plots"].items()]
    out += ["", "## Settings", "", "```json", json.dumps(cfg, indent=2, default=str), "```", ""]
    return "\n".join(out)


def write_results(results: dict, output: str | os.PathLike) -> dict:
    """Add the summary and plot names to ``results`` and write json, markdown and PNGs."""
    path = Path(output)
    results["summary"] = summarize(results)
    results["plots"] = plot_all(results, path)
    text = json.dumps(_clean(results), indent=2, allow_nan=False, default=_json_default)
    (path / "results.json").write_text(text)
    (path / "results.md").write_text(render_markdown(results))
    return results


def _clean(value):
    """NaN (an undefined AUC) becomes null; numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")

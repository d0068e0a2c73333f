"""The report of one run: ``results.json``, ``results.md`` and the plots.

:func:`summarize` turns the raw results of :func:`risc_tf.reproduce` into
Table 1 (accuracies, the paper's numbers in their own column), Table 2 (time),
the sweep's headline numbers and a one-sentence verdict; :func:`write_results`
writes everything into the run folder.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from risc_tf.atomic import write_text
from risc_tf.corrections import CORRECTIONS
from risc_tf.experiments.results import RunResults

__all__ = ["fmt", "json_text", "markdown_table", "render_markdown", "summarize", "write_results"]

#: The method the paper's RISC accuracy is printed beside.
PAPER_METHOD = "risc_hard"


def fmt(value, digits: int = 3) -> str:
    """A number for a Markdown table: 3 decimals, ``-`` for missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """Lines of a Markdown table; numbers go through :func:`fmt`."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(v if isinstance(v, str) else fmt(v) for v in r) + " |"
              for r in rows]
    return lines


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summarize(results: RunResults) -> dict:
    """Table 1, Table 2, the sweep table and the plain-words verdict, as JSON-ready data."""
    ev, paper = results.evaluation, results.paper or {}
    up, rot = ev.upright, ev.rotated
    rows = [
        {"row": "RotNet accuracy, rotated test", "acc": results.rotnet.acc,
         "auc": None, "paper_acc": paper.get("rotnet_acc")},
        {"row": "Upright test, classifier", "acc": up["classifier"].acc,
         "auc": up["classifier"].auc, "paper_acc": paper.get("upright_acc")},
        {"row": "Rotated test, classifier (no correction)", "acc": rot["classifier"].acc,
         "auc": rot["classifier"].auc, "paper_acc": None},
    ]
    for m in rot:
        if m != "classifier":
            rows.append({"row": f"Rotated test, {m}", "acc": rot[m].acc, "auc": rot[m].auc,
                         "paper_acc": paper.get("risc_rotated_acc") if m == PAPER_METHOD
                         else None})
    def order(m):  # by ACC, then AUC (an undefined AUC last)
        auc = rot[m].auc
        return -rot[m].acc, -(auc if auc is not None and auc == auc else -1.0)

    ranking = sorted(rot, key=order)
    best = ranking[0]
    ties = [m for m in ranking[1:] if math.isclose(rot[m].acc, rot[best].acc)]
    sweep = results.sweep.summary
    sweep_best = max(sweep, key=lambda m: sweep[m].mean)
    verdict = (
        f"On the randomly rotated test set the most accurate method is {best} "
        f"(ACC {rot[best].acc:.3f}, AUC {fmt(rot[best].auc)})"
        + (f", tied with {', '.join(ties)}" if ties else "")
        + ". Ranking by ACC: " + ", ".join(f"{m} {rot[m].acc:.3f}" for m in ranking)
        + f". Over the whole circle ({results.sweep.split} sweep) the best mean accuracy "
        f"is {sweep_best}'s ({sweep[sweep_best].mean:.3f}). One seed: see the aggregate "
        "over seeds for a verdict with statistics."
    )
    train = results.training
    time_rows = []
    for name, t in results.timing.items():
        method = CORRECTIONS.get(name)
        if method is not None and method.uses_rotnet:
            train_s = train["rotnet"].train_time_s + train["classifier"].train_time_s
        else:  # a baseline model, or a correction that only reuses the upright classifier
            train_s = train[name if name in train else "classifier"].train_time_s
        time_rows.append({"model": name, "train_time_s": train_s, **t.to_json()})
    return {
        "table1": {"split_sizes": results.dataset.split_sizes, "rows": rows},
        "table2": {"rows": time_rows, "machine": results.machine},
        "ranking_rotated": ranking,
        "verdict": verdict,
    }


def _sweep_lines(results: RunResults) -> list[str]:
    sweep = results.sweep
    lines = [f"## Over the whole circle ({sweep.split} set rotated by "
             f"{len(sweep.angles)} angles, {sweep.angles[1] - sweep.angles[0]:g} deg "
             "apart)", ""]
    lines += markdown_table(
        ["method", "mean ACC", "at the quarter turns", "at the other angles", "worst ACC",
         "worst angle"],
        [[m, s.mean, s.quarter_turn_mean, s.off_grid_mean, s.worst_acc, f"{s.worst_angle:g}"]
         for m, s in sweep.summary.items()])
    if sweep.rotnet_mae_deg_mean is not None:
        lines += ["", f"RotNet mean absolute angular error over the sweep: "
                      f"{sweep.rotnet_mae_deg_mean:.1f} deg."]
        if sweep.rotnet_median_deg is not None:
            lines[-1] += (f" Median {sweep.rotnet_median_deg:.1f} deg, 95th percentile "
                          f"{sweep.rotnet_p95_deg:.1f} deg over every image at every angle; "
                          f"worst angle {sweep.rotnet_worst_angle:g} deg "
                          f"({sweep.rotnet_worst_mae_deg:.1f} deg).")
        if sweep.rotnet_refined_mae_deg_mean is not None:
            lines[-1] += (f" Refined from its probabilities (between neighbouring bins): "
                          f"{sweep.rotnet_refined_mae_deg_mean:.1f} deg.")
    return lines + [""]


def _selective_lines(results: RunResults) -> list[str]:
    lines = ["## Selective classification (RISC hard, rotated sets)", "",
             "An image is answered when the confidence is at least the threshold and left to a "
             "person otherwise. Pick a threshold on the validation rows; the test rows show what "
             "it gives.", ""]
    rows = []
    for split, curves in (results.selective or {}).items():
        for kind, c in curves.items():
            for t, cov, acc in zip(c.thresholds, c.coverage, c.accuracy):
                rows.append([split, kind, f"{t:g}", cov, acc])
    return lines + markdown_table(["split", "confidence", "threshold", "coverage", "ACC"],
                                  rows) + [""]


def _floor(block: dict) -> list[str]:
    """The ECE floor of a calibration block, as two cells (n/a for older runs)."""
    c = block.get("ece_after_consistency")
    if c is None:
        return ["n/a", "n/a"]
    return [f"{c['null_mean']:.3f} ({c['null_p95']:.3f})", f"{c['p_value']:.3g}"]


def _trust_lines(results: RunResults) -> list[str]:
    """Calibration, the review thresholds chosen on validation, and images unlike the
    training data."""
    if not results.trust:
        return []
    fit, test = results.trust["fit"], results.trust["test"]
    lines = ["## Calibration, review thresholds and images unlike the training data", "",
             "Temperatures, thresholds and the detector were fitted on the validation split "
             "(the saved pipeline applies them); measured here on the rotated test set "
             f"({test['bins']} equal-width confidence bins).", ""]
    lines += markdown_table(
        ["model", "temperature", "ECE before", "ECE after", "ECE if calibrated (95th pct)",
         "p", "NLL before", "NLL after"],
        [[name, f"{test[key]['temperature']:.3g}", test[key]["ece_before"],
          test[key]["ece_after"], *_floor(test[key]), test[key]["nll_before"],
          test[key]["nll_after"]]
         for key, name in (("rotnet", "RotNet"), ("classifier", "classifier"))])
    lines += ["", "ECE if calibrated: what a perfectly calibrated model shows on the same images "
              "(each answer drawn right with the probability it states; mean and 95th "
              "percentile of the draws); p: share of draws at or above the measured ECE after "
              "scaling. A small p is evidence of miscalibration; an ECE inside the draws is not.",
              ""]
    for model, note in fit.get("temperature_notes", {}).items():
        lines.append(f"- {'RotNet' if model == 'rotnet' else 'Classifier'} temperature: {note}.")
    for key, what in (("rotation_threshold", "Rotation confidence"),
                      ("class_threshold", "Class probability")):
        t = fit[key]
        goal = (f"answered accuracy >= {t['target_value']:.3f}" if t["target"] == "min_accuracy"
                else f"coverage >= {t['target_value']:.3f}")
        lines.append(f"- {what} threshold {t['threshold']:.4g}, chosen for {goal} "
                     f"({t['description']}): on validation accuracy {fmt(t['accuracy'])} at "
                     f"coverage {t['coverage']:.3f}" + ("" if t["met"] else " (not reached)")
                     + ".")
    ood = test.get("ood")
    if ood:
        layers = ", ".join(ood.get("layers") or ["penultimate"])
        lines.append(f"- Images unlike the training images: Mahalanobis score on the "
                     f"classifier's {layers} features above "
                     f"{ood['threshold']:.4g} (the {ood['percentile']:g}th percentile on "
                     f"validation); it flags {ood['in_distribution']['flagged']:.3f} of the "
                     "rotated test images" + "".join(
                         f"; {name} test images: AUROC {o['auroc']:.3f}, flagged "
                         f"{o['flagged']:.3f}" for name, o in ood["other"].items()) + ".")
    return lines + [""]


def render_markdown(results: RunResults) -> str:
    """``results.md``: Tables 1 and 2, per-angle accuracy, sweep, selective, settings."""
    s, d, cfg = results.summary, results.dataset, results.config
    m, run = results.machine, results.run
    sizes = d.split_sizes
    subset = "" if sizes == d.full_split_sizes else " (a subset; full: " + " / ".join(
        str(d.full_split_sizes[k]) for k in ("train", "val", "test")) + ")"
    angles = results.angles
    out = [
        f"# RISC reproduction: {d.name}", "",
        f"Run `{run.id}`, started {run.started}, wall time {run.wall_time_s:.0f} s. "
        f"Recipe `{cfg['recipe']}`: backbone `{cfg['backbone']}` (weights: "
        f"{cfg['weights'] or 'none, from scratch'}; classifiers initialised from "
        f"{cfg['classifier_init']}), input {cfg['input_size']}x{cfg['input_size']}, at most "
        f"{_count(cfg['rotnet_epochs'], 'RotNet epoch')} and "
        f"{_count(cfg['epochs'], 'classifier epoch')} (patience {cfg['patience']}), batch "
        f"{cfg['batch_size']}, seed {cfg['seed']}.", "",
        f"Machine: {m['cpu']}, {m['cores_available']} cores, {m['memory_gib']} GiB, "
        f"GPUs: {', '.join(m['gpus']) or 'none'}; TensorFlow {m['tensorflow']}"
        + (f" ({m['tf_cpu_kernels']} CPU kernels; CPU flags "
           f"{', '.join(m['cpu_features']) or 'none of those recorded'})"
           if "tf_cpu_kernels" in m else "")
        + f", Keras {m['keras']}.", "",
        "RotNet angle set: " + ", ".join(f"{a:g}" for a in angles.rotnet)
        + f" degrees; fill `{cfg['fill']}`. Rotated test set: "
        + ("each image turned by an angle drawn from " + ", ".join(
            f"{a:g}" for a in angles.rotated_test) + " degrees"
           if angles.protocol == "set" else "each image turned by a uniform random angle")
        + f" (protocol `{angles.protocol}`).", "",
        "## Table 1", "",
        f"Split sizes train / val / test: {sizes['train']} / {sizes['val']} / {sizes['test']}"
        f"{subset}. The paper column holds the numbers the RISC paper reports, for "
        "comparison only; they were not measured here.", "",
    ]
    out += markdown_table(["", "ACC (this run)", "AUC (this run)", "ACC (paper)"],
                          [[r["row"], r["acc"], r["auc"], r["paper_acc"]]
                           for r in s["table1"]["rows"]])
    out += ["", f"**Verdict.** {s['verdict']}", "", "## All methods, upright and rotated test", ""]
    ev = results.evaluation
    out += markdown_table(["method", "upright ACC", "upright AUC", "rotated ACC", "rotated AUC"],
                          [[f"{k}: {results.methods[k]}", ev.upright[k].acc,
                            ev.upright[k].auc, ev.rotated[k].acc,
                            ev.rotated[k].auc] for k in ev.rotated])
    rotnet = results.rotnet
    per_angle = list(ev.rotated["classifier"].per_angle_acc)
    out += ["", "## Accuracy per true rotation (rotated test set)", "",
            f"RotNet: accuracy {fmt(rotnet.acc)} on the {rotnet.n_in_set} images whose "
            f"angle is in its set, nearest-angle accuracy {fmt(rotnet.nearest_acc)}, mean "
            f"absolute error {rotnet.mae_deg:.1f} deg; it calls {fmt(rotnet.upright_acc)} "
            "of the upright test images upright.", ""]
    rows = [["RotNet (angle)", *[rotnet.per_angle_acc.get(a, "-") for a in per_angle]]]
    rows += [[k, *[r.per_angle_acc.get(a) for a in per_angle]]
             for k, r in ev.rotated.items()]
    out += markdown_table(["method", *[f"{a} deg" for a in per_angle]], rows)
    out += [""] + _sweep_lines(results) + _selective_lines(results) + _trust_lines(results)
    out += ["## Table 2: time", ""]
    out += markdown_table(["model / method", "training (s)", "inference, batched (ms/sample)",
                           "inference, one at a time (ms/sample)"],
                          [[r["model"], f"{r['train_time_s']:.1f}",
                            f"{r['batched_ms_per_sample']:.2f}",
                            f"{r['single_ms_per_sample']:.2f}"] for r in s["table2"]["rows"]])
    out += ["", "RISC training time is the RotNet's plus the classifier's; TTA reuses the "
            "upright classifier. Inference includes the rotated-test images already at model "
            "input size; batches of 256.", "", "## Training", ""]
    rows = []
    for name, t in results.training.items():
        h = t.history
        rows.append([name, t.epochs_run, t.best_epoch, h["accuracy"][-1],
                     (h.get("val_accuracy") or [None])[-1], t.best_val_accuracy,
                     f"{t.train_time_s:.1f}"])
    out += markdown_table(["model", "epochs run", "best epoch", "last train ACC", "last val ACC",
                           "best val ACC", "time (s)"], rows)
    out += ["", "Validation accuracy is measured after BatchNorm statistics are re-estimated "
            "on training batches at the end of each epoch (`risc_tf.recalibration`), so it "
            "should track training accuracy; compare the two columns above and the curves "
            "below.", "", "## Figures", ""]
    out += [f"![{name}]({file})" for name, file in (results.plots or {}).items()]
    out += ["", "## Settings", "", "```json", json.dumps(cfg, indent=2, default=str), "```", ""]
    return "\n".join(out)


def json_text(results: dict) -> str:
    """Strict JSON: NaN (an undefined AUC) becomes null, numpy scalars Python numbers."""
    return json.dumps(_clean(results), indent=2, allow_nan=False, default=_json_default)


def write_results(results: RunResults, output: str | os.PathLike) -> RunResults:
    """Add the summary and plot names to ``results`` and write json, markdown and PNGs."""
    from risc_tf.experiments.plots import plot_all

    path = Path(output)
    results.summary = json.loads(json_text(summarize(results)))
    results.plots = plot_all(results, path)
    write_text(path / "results.json", json_text(results.to_json()))
    write_text(path / "results.md", render_markdown(results))
    return results


def _clean(value):
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

"""The aggregate of several runs of one experiment: spread, intervals, paired tests, verdict.

:func:`aggregate` reads finished :func:`risc_tf.reproduce` run folders of the
same experiment (same dataset, angle sets, protocol, recipe, fill and model;
different seeds) and writes ``results.json``, ``results.md`` and
``accuracy_intervals.png`` into an output folder: per method the mean +- std
over seeds and a 95 % bootstrap interval of the rotated-test accuracy, AUC,
the sweep's headline numbers, the RotNet's accuracy and angular error, and the
paired tests of RISC against each baseline (exact McNemar per seed; combined
over seeds, an image-level permutation test; Holm-corrected), ending in a
one-sentence verdict generated from the numbers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from risc_tf.atomic import write_text
from risc_tf.corrections import CORRECTIONS, DEPLOYED
from risc_tf.experiments.config import PER_RUN, describe_setting
from risc_tf.experiments.report import fmt, json_text, markdown_table
from risc_tf.experiments.results import (
    AggregateResults,
    AggregateSummary,
    RotNetSpread,
    RunResults,
    load_results,
)
from risc_tf.experiments.rundir import (
    ensure_output_dir,
    machine_info,
    now_iso,
    read_run,
    source_info,
)
from risc_tf.figures import save_figure
from risc_tf.statistics import ALPHA, bootstrap_accuracy_ci, mean_std
from risc_tf.verdicts import compare_paired, compare_scores

__all__ = ["aggregate", "load_runs", "verdict_method"]


def verdict_method(config: dict) -> str:
    """The method an experiment's one-sentence verdict is about: the correction its RISC
    pipeline uses (:data:`risc_tf.corrections.DEPLOYED`; the paper's for runs without a
    recorded head)."""
    return DEPLOYED[config.get("rotnet_head", "bins")]


def _risc_and_baselines(methods) -> tuple[list[str], list[str]]:
    """The methods that read the RotNet (tested) and the others (baselines), in run order."""
    risc = [m for m in methods if m in CORRECTIONS and CORRECTIONS[m].uses_rotnet]
    return risc, [m for m in methods if m not in risc]


def load_runs(folders: Sequence[str | os.PathLike]) -> list[RunResults]:
    """The results of each finished run folder, checked to be one experiment.

    Raises
    ------
    ValueError
        No folder given; a folder that is not a run folder, or an unfinished run;
        runs whose settings differ (the message names the folder and the setting);
        the same seed twice.
    """
    if not folders:
        raise ValueError("aggregate needs at least one run folder")
    runs = []
    for folder in folders:
        folder = Path(folder)
        run = read_run(folder)
        if not folder.is_dir() or run is None:
            raise ValueError(f"{folder} is not a risc-tf reproduce run folder (no readable "
                             "run.json)")
        if run.get("status") != "complete" or not (folder / "results.json").is_file():
            raise ValueError(f"{folder} holds an unfinished run (status "
                             f"{run.get('status')!r}); finish or rerun it first")
        results = load_results(folder / "results.json")
        if not isinstance(results, RunResults):
            raise ValueError(f"{folder} holds an aggregate, not a run")
        risc, _ = _risc_and_baselines(results.evaluation.rotated)
        if results.test_labels is None or any(
                results.evaluation.rotated[m].predicted is None for m in risc):
            raise ValueError(f"{folder} was made by an older risc_tf without per-image "
                             "predictions; rerun it to aggregate it")
        runs.append(results)
    first, folders = runs[0].config, [str(f) for f in folders]
    for folder, r in zip(folders[1:], runs[1:]):
        for key in sorted(set(first) | set(r.config)):
            if key not in PER_RUN and r.config.get(key) != first.get(key):
                raise ValueError(
                    f"{folder} differs from {folders[0]} in {key} "
                    f"({r.config.get(key)!r} vs {first.get(key)!r}): not one experiment"
                )
        if r.test_labels != runs[0].test_labels:
            raise ValueError(f"{folder} was scored on other test images than "
                             f"{folders[0]}: not one experiment")
    seeds = [r.config["seed"] for r in runs]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"the runs repeat a seed ({seeds}): each seed must appear once")
    return runs


def _summary(runs: list[RunResults]) -> AggregateSummary:
    methods = list(runs[0].evaluation.rotated)
    out: dict = {"methods": {}, "rotnet": {}, "sweep": {}}
    for m in methods:
        correct = [r.correct(m) for r in runs]
        rotated = [r.evaluation.rotated[m] for r in runs]
        upright = [r.evaluation.upright[m] for r in runs]
        out["methods"][m] = {
            "rotated_acc": mean_std([e.acc for e in rotated]),
            "rotated_acc_ci95": bootstrap_accuracy_ci(correct),
            "rotated_auc": mean_std([e.auc for e in rotated]),
            "upright_acc": mean_std([e.acc for e in upright]),
            "upright_auc": mean_std([e.auc for e in upright]),
        }
        out["sweep"][m] = {k: mean_std([getattr(r.sweep.summary[m], k) for r in runs])
                           for k in ("mean", "quarter_turn_mean", "off_grid_mean", "worst_acc")}
    out["rotnet"] = {k: mean_std([getattr(r.rotnet, k) for r in runs])
                     for k in ("acc", "nearest_acc", "mae_deg", "upright_acc")}
    out["rotnet"]["sweep_mae_deg"] = mean_std([r.sweep.rotnet_mae_deg_mean for r in runs])
    out["rotnet"]["sweep_refined_mae_deg"] = mean_std(
        [r.sweep.rotnet_refined_mae_deg_mean for r in runs])
    for key, field in (("sweep_median_deg", "rotnet_median_deg"),
                       ("sweep_p95_deg", "rotnet_p95_deg"),
                       ("sweep_worst_mae_deg", "rotnet_worst_mae_deg")):
        values = [getattr(r.sweep, field) for r in runs]
        out["rotnet"][key] = mean_std(values) if any(v is not None for v in values) else None
    per_seed = {m: [r.correct(m) for r in runs] for m in methods}
    risc, baselines = _risc_and_baselines(methods)
    out["tests"] = {m: compare_paired(m, per_seed, baselines) for m in risc}
    if all(r.sweep.correct_counts for r in runs):  # the same comparisons over the circle
        angles = len(runs[0].sweep.angles)
        scores = {m: [np.asarray(r.sweep.correct_counts[m]) / angles for r in runs]
                  for m in methods}
        out["sweep_tests"] = {m: compare_scores(m, scores, baselines) for m in risc}
    return AggregateSummary.from_json(json.loads(json_text(out)))


def _verdict(summary: AggregateSummary, n: int, method: str) -> str:
    methods = summary.methods
    hard = methods[method].rotated_acc
    tests = summary.tests[method]
    parts = []
    for base, t in tests.items():
        acc = methods[base].rotated_acc
        relation = {"at par": "at par with", "inconclusive": "inconclusive against"}.get(
            t.verdict, f"{t.verdict} than")
        parts.append(f"{relation} {base} ({acc.mean:.3f} +- {acc.std:.3f}; p = {t.p_holm:.2g}"
                     + (f" over the images, {t.seeds_p_holm:.2g} over the seeds)"
                        if t.seeds_p_holm is not None else ")"))
    return (f"Over {n} seed{'s' if n > 1 else ''}, {CORRECTIONS[method].short} reaches "
            f"{hard.mean:.3f} +- "
            f"{hard.std:.3f} on the rotated test set and is " + "; ".join(parts)
            + " (better or worse only where the paired permutation test over the test "
              "images and the paired t-test over the seeds agree, each Holm-corrected, "
              "5 % level).")


def _plot(summary: AggregateSummary, runs: list[RunResults], path: Path) -> Path:
    methods = list(summary.methods)
    fig = Figure(figsize=(8.5, 4.2))
    ax = fig.subplots()
    for i, m in enumerate(methods):
        s = summary.methods[m]
        ci = s.rotated_acc_ci95
        mean = s.rotated_acc.mean
        ax.errorbar(i, mean, yerr=[[mean - ci.low], [ci.high - mean]], fmt="o",
                    capsize=6, color="C0", label="mean, 95 % bootstrap interval" if i == 0
                    else None)
        ax.plot([i] * len(runs), s.rotated_acc.values, "x", color="C1",
                label="one seed" if i == 0 else None)
    ax.set_xticks(range(len(methods)), methods)
    ax.set_ylabel("accuracy, rotated test set")
    ax.set_title(f"{runs[0].dataset.name}, {describe_setting(runs[0].config, code=False)}: "
                 f"{len(runs)} seeds", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _spread_of_error(rotnet: RotNetSpread) -> str:
    """The median, 95th-percentile and worst-angle clause of the sweep error, empty for runs
    made before they were measured."""
    parts = [(name, getattr(rotnet, key)) for name, key in (
        ("median", "sweep_median_deg"), ("95th percentile", "sweep_p95_deg"),
        ("worst angle", "sweep_worst_mae_deg"))]
    parts = [f"{name} {fmt(v.mean, 1)} +- {fmt(v.std, 1)}" for name, v in parts if v is not None]
    return f"; {', '.join(parts)} deg" if parts else ""


def _refined(rotnet: RotNetSpread) -> str:
    """The refined sweep error's clause, empty for runs made before it was measured."""
    refined = rotnet.sweep_refined_mae_deg
    if refined is None or refined.mean is None:
        return ""
    return (f" ({fmt(refined.mean, 1)} +- {fmt(refined.std, 1)} deg refined from its "
            "probabilities)")


def _markdown(agg: AggregateResults) -> str:
    s, cfg = agg.summary, agg.config
    lines = [f"# RISC aggregate: {cfg['dataset']}, {describe_setting(cfg)}, "
             f"{len(agg.seeds)} seeds", "",
             f"Seeds {', '.join(map(str, agg.seeds))}; runs: "
             + ", ".join(f"`{f}`" for f in agg.runs) + f". Made {agg.made}.", "",
             f"**Verdict.** {agg.verdict}", "",
             "Commands: " + "; ".join(f"`{c}`" for c in dict.fromkeys(agg.command)) + ". "
             "Commits: " + ", ".join(f"{(c or 'unknown')[:7]}{' (modified)' if d else ''}"
                                     for c, d in zip(agg.commit, agg.dirty)) + ". "
             "Wall time per seed: " + ", ".join(f"{t:.0f} s" for t in agg.wall_time_s)
             + f". Machine: {agg.machine.get('cpu', 'unknown')}, "
             f"{agg.machine.get('cores_available', '?')} cores.", "",
             "## Rotated test set (mean +- std over seeds; 95 % bootstrap interval over test "
             "images)", ""]
    lines += markdown_table(
        ["method", "rotated ACC", "95 % interval", "rotated AUC", "upright ACC"],
        [[m, f"{v.rotated_acc.mean:.3f} +- {v.rotated_acc.std:.3f}",
          f"[{v.rotated_acc_ci95.low:.3f}, {v.rotated_acc_ci95.high:.3f}]",
          f"{fmt(v.rotated_auc.mean)} +- {fmt(v.rotated_auc.std)}",
          f"{v.upright_acc.mean:.3f} +- {v.upright_acc.std:.3f}"]
         for m, v in s.methods.items()])
    paper = agg.paper or {}
    if paper:
        lines += ["", f"The paper reports (ImageNet weights, not measured here): RotNet "
                      f"{paper.get('rotnet_acc')}, upright {paper.get('upright_acc')}, RISC "
                      f"rotated {paper.get('risc_rotated_acc')}."]
    r = s.rotnet
    lines += ["", f"RotNet: accuracy {fmt(r.acc.mean)} +- {fmt(r.acc.std)}, mean "
                  f"angular error {fmt(r.mae_deg.mean, 1)} deg on the rotated test set, "
                  f"{fmt(r.sweep_mae_deg.mean, 1)} deg over the sweep"
                  + _refined(r) + _spread_of_error(r) + ".", "",
              "## Over the whole circle (sweep; mean +- std over seeds)", ""]
    lines += markdown_table(
        ["method", "mean", "quarter turns", "other angles", "worst angle"],
        [[m, *[f"{fmt(getattr(v, k).mean)} +- {fmt(getattr(v, k).std)}" for k in
               ("mean", "quarter_turn_mean", "off_grid_mean", "worst_acc")]]
         for m, v in s.sweep.items()])
    lines += ["", "## Paired tests on the same rotated test images", "",
              "Per seed: exact McNemar test, images only RISC gets right / only the baseline "
              "gets right (p). Over the images: each image's difference between the two "
              "methods averaged over the seeds, sign-flip permutation test of its mean (the "
              "image is the unit: every seed sees the same images, its trained models held "
              "fixed). Over the seeds: paired t-test of the per-seed accuracy differences "
              "(each seed a whole training run). Both Holm-corrected over the baselines; the "
              f"verdict is better or worse only when both agree at the {ALPHA:.0%} level, at "
              "par when neither is significant, inconclusive otherwise.", ""]
    lines += _tests_table(s.tests, per_seed=True)
    if s.sweep_tests:
        lines += ["", "## Paired tests over the whole circle (sweep)", "",
                  "Each image's score: the fraction of the sweep's angles at which it is "
                  "classified correctly; the same two tests and verdict.", ""]
        lines += _tests_table(s.sweep_tests, per_seed=False)
    lines += ["", "![accuracy with intervals](accuracy_intervals.png)", ""]
    return "\n".join(lines)


def _tests_table(tests: dict, *, per_seed: bool) -> list[str]:
    rows = []
    for method, comparisons in tests.items():
        for base, t in comparisons.items():
            c, seeds = t.combined, t.seeds or {}
            row = [method, base]
            if per_seed:
                row.append("; ".join(f"{x['a_only']}/{x['b_only']} (p {x['p_value']:.2g})"
                                     for x in t.per_seed))
            row += [f"{c['mean_difference']:+.3f}", f"{t.p_holm:.2g}",
                    ", ".join(f"{d:+.3f}" for d in seeds.get("differences", [])) or "-",
                    "-" if t.seeds_p_holm is None else f"{t.seeds_p_holm:.2g}",
                    t.verdict]
            rows.append(row)
    return markdown_table(["method", "baseline", *(["McNemar per seed"] if per_seed else []),
                           "difference (images)", "p (images, Holm)", "difference per seed",
                           "p (seeds, Holm)", "verdict"], rows)


def _check_output(output: Path, folders: Sequence[str | os.PathLike], overwrite: bool) -> None:
    """The output may not be (or lie inside) a run folder, nor hold an aggregate unless
    ``overwrite``."""
    target = output.resolve()
    for folder in folders:
        run = Path(folder).resolve()
        if target == run or run in target.parents:
            raise ValueError(f"output {output} is {'inside ' if target != run else ''}the run "
                             f"folder {folder}: the aggregate would overwrite the run's own "
                             "results; choose an output folder outside the runs")
    if (output / "results.json").exists() and not overwrite:
        raise FileExistsError(f"{output}/results.json exists; pass overwrite=True to replace it")


def aggregate(folders: Sequence[str | os.PathLike], output: str | os.PathLike, *,
              overwrite: bool = False) -> AggregateResults:
    """Aggregate finished runs of one experiment into ``output``; return the aggregate.

    Raises
    ------
    ValueError
        See :func:`load_runs`, or ``output`` is (or lies inside) one of the run
        folders (nothing is written).
    FileExistsError
        ``output`` already holds an aggregate and ``overwrite`` is off.
    """
    output = Path(output)
    runs = load_runs(folders)
    _check_output(output, folders, overwrite)
    summary = _summary(runs)
    agg = AggregateResults(
        kind="aggregate",
        made=now_iso(),
        runs=[str(f) for f in folders],
        seeds=[r.config["seed"] for r in runs],
        config={k: v for k, v in runs[0].config.items() if k not in PER_RUN},
        wall_time_s=[r.run.wall_time_s for r in runs],
        commit=[r.run.commit for r in runs],
        dirty=[r.run.dirty for r in runs],
        command=[r.run.command for r in runs],
        aggregated_by=source_info()["command"],
        machine=runs[0].machine or machine_info(),
        paper=runs[0].paper,
        summary=summary,
        verdict=_verdict(summary, len(runs), verdict_method(runs[0].config)),
    )
    ensure_output_dir(output)
    _plot(summary, runs, output / "accuracy_intervals.png")
    write_text(output / "results.json", json_text(agg.to_json()))
    write_text(output / "results.md", _markdown(agg))
    return agg

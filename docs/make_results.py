"""Rebuild the results tables of README.md and docs/results.md from the committed aggregates.

Every multi-seed number published in those two files is read from an aggregate's
``results.json`` under ``docs/results/`` (written by ``risc-tf reproduce --seeds`` or
``risc-tf aggregate``) and placed between the markers
``<!-- results:begin -->`` and ``<!-- results:end -->``; nothing is typed by hand.
Run from the repository root after adding or replacing an aggregate::

    python docs/make_results.py          # rewrite both tables
    python docs/make_results.py --check  # exit 1 if either table is stale
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path, PurePosixPath

from risc_tf.experiments.aggregation import verdict_method
from risc_tf.experiments.config import describe_setting
from risc_tf.experiments.results import AggregateResults, Spread, load_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"
SWEEP_NOTE = ("Over the whole circle (the test set turned by 0, 10, ..., 350 deg; mean +- std over "
              "the seeds; \"other angles\" are the 32 that are not quarter turns):")
RUNS_NOTE = ("Each run was made in a clean worktree of the commit in the table. The commands are "
             "shown with an output folder relative to the checkout (`runs/final/<aggregate>`); "
             "the command recorded in each run's `results.json` names that machine's absolute "
             "folder.")
NAMES = {"pneumoniamnist": "PneumoniaMNIST", "retinamnist": "RetinaMNIST",
         "organamnist": "OrganAMNIST"}


def aggregates() -> list[tuple[str, AggregateResults]]:
    """(folder name, aggregate) of every aggregate under docs/results, by dataset then name."""
    found = []
    for path in sorted(RESULTS.glob("*/results.json")):
        if json.loads(path.read_text()).get("kind") == "aggregate":
            found.append((path.parent.name, load_results(path)))
    return sorted(found, key=lambda t: (t[1].config["dataset"], t[0]))


def setting(cfg: dict) -> str:
    """A short description of a run's recipe, angle set, head and fill."""
    return describe_setting(cfg)


def pm(stat: Spread, digits: int = 3) -> str:
    return f"{stat.mean:.{digits}f} +- {stat.std:.{digits}f}"


def risc(agg: AggregateResults) -> str:
    """The RISC correction an aggregate's verdict is about (hard for bins, angle for circular)."""
    return verdict_method(agg.config)


def verdict(agg: AggregateResults, tests=None, baseline: str = "rotation_augmented") -> str:
    """The verdict and what it rests on: the test over the images and the one over the seeds."""
    tests = agg.summary.tests if tests is None else tests
    if not tests:
        return "-"
    test = tests[risc(agg)][baseline]
    return f"{test.verdict} (p = {test.p_holm:.2g} images, {test.seeds_p_holm:.2g} seeds)"


def summary_table(found: list[tuple[str, AggregateResults]]) -> list[str]:
    """One row per aggregate, the paper's numbers in their own rows below."""
    head = ["dataset, setting (seeds)", "RotNet ACC", "upright ACC", "rotated: no correction",
            "rotated: rot.-augmented", "rotated: RISC", "rotated: RISC soft",
            "sweep mean: RISC / rot.-aug.", "RISC vs rot.-aug.: rotated",
            "RISC vs rot.-aug.: sweep"]
    rows = []
    for name, agg in found:
        s, cfg = agg.summary, agg.config
        m, sw = s.methods, s.sweep
        rows.append([
            f"{NAMES.get(cfg['dataset'], cfg['dataset'])}, {setting(cfg)} "
            f"([{len(agg.seeds)}](docs/results/{name}/results.md))",
            pm(s.rotnet.acc), pm(m["classifier"].upright_acc),
            pm(m["classifier"].rotated_acc), pm(m["rotation_augmented"].rotated_acc),
            pm(m[risc(agg)].rotated_acc),
            pm(m["risc_soft"].rotated_acc) if "risc_soft" in m else "-",
            f"{sw[risc(agg)].mean.mean:.3f} / {sw['rotation_augmented'].mean.mean:.3f}",
            verdict(agg), verdict(agg, s.sweep_tests)])
    papers = {agg.config["dataset"]: agg.paper for _, agg in found}
    for dataset, paper in papers.items():
        if paper:
            rows.append([f"{NAMES.get(dataset, dataset)}, **the paper** (ImageNet weights; "
                         "not measured here)", f"{paper['rotnet_acc']}",
                         f"{paper['upright_acc']}", "-", "-", f"{paper['risc_rotated_acc']}",
                         "-", "-", "-", "-"])
    return _table(head, rows)


def _error(rotnet, key: str) -> str:
    value = getattr(rotnet, key)
    return "-" if value is None or value.mean is None else pm(value, 1)


def sweep_table(found: list[tuple[str, AggregateResults]]) -> list[str]:
    """The 0-350 deg sweep of each aggregate: RISC, rotation-augmented classifier, RotNet."""
    head = ["dataset, setting", "upright ACC (classifier)",
            "RISC: sweep mean", "quarter turns", "other angles", "worst angle",
            "rot.-augmented: sweep mean", "worst angle",
            "RotNet sweep error (deg): mean", "median", "95th percentile"]
    rows = []
    for name, agg in found:
        s, cfg = agg.summary, agg.config
        hard, aug = s.sweep[risc(agg)], s.sweep["rotation_augmented"]
        rows.append([
            f"[{NAMES.get(cfg['dataset'], cfg['dataset'])}, {setting(cfg)}]"
            f"(results/{name}/results.md)",
            pm(s.methods["classifier"].upright_acc),
            pm(hard.mean), pm(hard.quarter_turn_mean), pm(hard.off_grid_mean),
            pm(hard.worst_acc), pm(aug.mean), pm(aug.worst_acc),
            pm(s.rotnet.sweep_mae_deg, 1), _error(s.rotnet, "sweep_median_deg"),
            _error(s.rotnet, "sweep_p95_deg")])
    return _table(head, rows)


def published_command(command: str, name: str) -> str:
    """``command`` as published: an absolute ``--output`` folder becomes ``runs/final/<name>``.

    The recorded command names the folder of the machine that ran it; a reader runs it
    from a checkout. A relative folder is kept as recorded.
    """
    words = shlex.split(command)
    for i, word in enumerate(words):
        if word == "--output" and i + 1 < len(words):
            if PurePosixPath(words[i + 1]).is_absolute():
                words[i + 1] = f"runs/final/{name}"
        elif word.startswith("--output=") and PurePosixPath(word[9:]).is_absolute():
            words[i] = f"--output=runs/final/{name}"
    return shlex.join(words)


def runs_table(found: list[tuple[str, AggregateResults]]) -> list[str]:
    """Command (with a relative output folder), commits and wall time behind each aggregate."""
    rows = []
    for name, agg in found:
        commits = ", ".join(sorted({(c or "unknown")[:7] for c in agg.commit}))
        times = ", ".join(f"{t / 60:.0f}" for t in agg.wall_time_s)
        commands = "<br>".join(f"`{published_command(c, name)}`"
                               for c in dict.fromkeys(agg.command))
        rows.append([f"[{name}](results/{name}/results.md)", commands, commits, times])
    return _table(["aggregate", "command", "commit", "wall time per seed (min)"], rows)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
            *["| " + " | ".join(r) + " |" for r in rows]]


def block(found: list[tuple[str, AggregateResults]], for_readme: bool) -> str:
    lines = summary_table(found)
    if not for_readme:
        lines = [line.replace("](docs/results/", "](results/") for line in lines]
        lines += ["", SWEEP_NOTE, "", *sweep_table(found), "", *runs_table(found), "",
                  RUNS_NOTE]
    return "\n".join([BEGIN, *lines, END])


def rewrite(path: Path, text: str, check: bool) -> bool:
    """Put ``text`` between the markers of ``path``; True if it was already there."""
    old = path.read_text()
    if BEGIN not in old or END not in old:
        raise SystemExit(f"{path}: no {BEGIN} ... {END} markers")
    start, stop = old.index(BEGIN), old.index(END) + len(END)
    new = old[:start] + text + old[stop:]
    if new != old and not check:
        path.write_text(new)
    return new == old


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale tables")
    args = parser.parse_args(argv)
    found = aggregates()
    fresh = [rewrite(ROOT / "README.md", block(found, True), args.check),
             rewrite(ROOT / "docs" / "results.md", block(found, False), args.check)]
    if args.check and not all(fresh):
        print("README.md or docs/results.md is stale: run python docs/make_results.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

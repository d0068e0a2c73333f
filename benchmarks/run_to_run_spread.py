"""How far two runs of one seed differ, without and with --deterministic, beside the seeds.

``run`` trains: ``risc-tf reproduce`` once per setting (ordinary, deterministic) x seed x
repeat, each in a fresh process, into ``OUTPUT/<setting>/seed-<s>/run-<r>`` (a finished
folder is kept when the command is repeated), then summarises them. ``summarize`` reads
finished run folders made any other way, e.g. the same ``risc-tf reproduce`` command run
twice with ResNet50, and groups them by their recorded ``deterministic`` and ``seed``.

Both write ``OUTPUT/spread.json`` and ``OUTPUT/spread.md``: per setting and metric, the
largest difference between two runs of one seed (run to run) beside the difference
between the seeds (their first runs); how many test images change their prediction
between two runs of one seed; and whether the repeats are identical (every metric,
prediction and training-history value). Run from the repository root::

    python -m benchmarks.run_to_run_spread run --output runs/spread \\
        --data-root ../shared/data/medmnist

Options the script does not know go to ``risc-tf reproduce`` as they are; unless given,
it adds ``--backbone small --recipe tuned --epochs 5 --rotnet-epochs 5 --timing-samples 5``
(the README's main job with the small backbone and fewer epochs). For the ResNet50 pair::

    python -m benchmarks.run_to_run_spread summarize runs/r50-a runs/r50-b \\
        --output runs/r50-spread
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

#: metric label -> its place in results.json.
METRICS = {
    "upright ACC (classifier)": ("evaluation", "upright", "classifier", "acc"),
    "rotated ACC (classifier)": ("evaluation", "rotated", "classifier", "acc"),
    "rotated ACC (rotation-augmented)": ("evaluation", "rotated", "rotation_augmented", "acc"),
    "rotated ACC (RISC hard)": ("evaluation", "rotated", "risc_hard", "acc"),
    "rotated ACC (RISC soft)": ("evaluation", "rotated", "risc_soft", "acc"),
    "RotNet ACC (rotated test)": ("rotnet", "acc"),
    "sweep mean ACC (RISC hard)": ("sweep", "summary", "risc_hard", "mean"),
}
#: predictions compared image by image between two runs of one seed.
PREDICTIONS = {
    "upright classifier": ("evaluation", "upright", "classifier", "predicted"),
    "rotated RISC hard": ("evaluation", "rotated", "risc_hard", "predicted"),
}
SETTINGS = {"ordinary": [], "deterministic": ["--deterministic"]}
DEFAULTS = {"--backbone": "small", "--recipe": "tuned", "--epochs": "5",
            "--rotnet-epochs": "5", "--timing-samples": "5"}


def _get(results: dict, path: tuple):
    for key in path:
        results = results[key]
    return results


def _load(folder: Path) -> dict:
    path = folder / "results.json"
    if not path.is_file():
        raise SystemExit(f"{folder}: no results.json (not a finished risc-tf reproduce run)")
    return json.loads(path.read_text())


def _same_run(a: dict, b: dict) -> bool:
    """Every metric, prediction and training-history value equal."""
    return (all(_get(a, p) == _get(b, p) for p in (*METRICS.values(), *PREDICTIONS.values()))
            and all(a["training"][m]["history"] == b["training"][m]["history"]
                    for m in a["training"]))


def summarize(folders: list[Path]) -> dict:
    """Group finished runs by (deterministic, seed) and measure the spreads."""
    runs = [(folder, _load(folder)) for folder in folders]
    ignore = {"output", "seed", "deterministic", "overwrite", "verbose"}
    first = runs[0][1]["config"]
    for folder, results in runs[1:]:
        changed = sorted(k for k in set(first) | set(results["config"]) if k not in ignore
                         and results["config"].get(k) != first.get(k))
        if changed:
            raise SystemExit(f"{folder} differs from {runs[0][0]} in {', '.join(changed)}: "
                             "not the same command")
    groups: dict[str, dict[int, list]] = {}
    for folder, results in runs:
        setting = "deterministic" if results["config"].get("deterministic") else "ordinary"
        groups.setdefault(setting, {}).setdefault(results["config"]["seed"], []).append(
            (str(folder), results))
    table: dict = {"config": {k: v for k, v in first.items() if k not in ignore},
                   "machine": runs[0][1]["machine"], "settings": {}}
    for setting, seeds in sorted(groups.items()):
        entry = {"seeds": {str(s): [f for f, _ in reps] for s, reps in sorted(seeds.items())},
                 "metrics": {}, "changed_predictions": {}, "identical_repeats": None}
        repeated = [reps for reps in seeds.values() if len(reps) > 1]
        pairs = [(a, b) for reps in repeated for (_, a), (_, b) in itertools.combinations(reps, 2)]
        for label, path in METRICS.items():
            firsts = [_get(reps[0][1], path) for reps in seeds.values()]
            entry["metrics"][label] = {
                "mean_first_runs": sum(firsts) / len(firsts),
                "run_to_run": max((abs(_get(a, path) - _get(b, path)) for a, b in pairs),
                                  default=None),
                "between_seeds": max(firsts) - min(firsts) if len(firsts) > 1 else None,
            }
        for label, path in PREDICTIONS.items():
            entry["changed_predictions"][label] = max(
                (sum(x != y for x, y in zip(_get(a, path), _get(b, path))) for a, b in pairs),
                default=None)
        if pairs:
            entry["identical_repeats"] = f"{sum(_same_run(a, b) for a, b in pairs)} of {len(pairs)}"
        table["settings"][setting] = entry
    return table


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def markdown(table: dict) -> str:
    cfg = table["config"]
    lines = [
        "# Run-to-run spread, without and with `--deterministic`", "",
        f"`risc-tf reproduce` on {cfg['dataset']}, backbone `{cfg['backbone']}`, recipe "
        f"`{cfg['recipe']}` ({cfg['rotnet_epochs']} RotNet / {cfg['epochs']} classifier epochs "
        f"at most), subset {cfg.get('subset') or 'none'}; machine {table['machine'].get('cpu')}, "
        f"{table['machine'].get('cores_available')} cores, TensorFlow "
        f"{table['machine'].get('tensorflow')}, Keras {table['machine'].get('keras')}.", "",
        "Run to run: the largest |difference| between two runs of one seed; between seeds: "
        "max - min over the seeds' first runs.", "",
    ]
    for setting, entry in table["settings"].items():
        seeds = ", ".join(f"{s} ({len(f)} runs)" for s, f in entry["seeds"].items())
        lines += [f"## {setting}", "", f"Seeds: {seeds}. Identical repeats (every metric, "
                  f"prediction and training-history value): {entry['identical_repeats'] or 'n/a'}.",
                  "", "| metric | mean (first runs) | run to run | between seeds |",
                  "|---|---|---|---|"]
        lines += [f"| {label} | {_fmt(m['mean_first_runs'])} | {_fmt(m['run_to_run'])} | "
                  f"{_fmt(m['between_seeds'])} |" for label, m in entry["metrics"].items()]
        changed = ", ".join(f"{label} {'n/a' if n is None else n}"
                            for label, n in entry["changed_predictions"].items())
        lines += ["", f"Test images whose prediction changes between two runs of one seed "
                  f"(most over the seeds): {changed}.", ""]
    return "\n".join(lines)


def write(table: dict, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "spread.json").write_text(json.dumps(table, indent=2))
    (output / "spread.md").write_text(markdown(table))
    print(f"wrote {output / 'spread.md'}")
    print(markdown(table))


def run(args: argparse.Namespace, forwarded: list[str]) -> list[Path]:
    """Every setting x seed x repeat, each ``risc-tf reproduce`` in a fresh process."""
    given = {a.split("=", 1)[0] for a in forwarded if a.startswith("--")}
    base = [*forwarded, *itertools.chain.from_iterable(
        (k, v) for k, v in DEFAULTS.items() if k not in given)]
    if args.data_root:
        base += ["--data-root", args.data_root]
    folders = []
    for setting in args.settings:
        for seed in args.seeds:
            for repeat in range(1, args.repeats + 1):
                folder = args.output / setting / f"seed-{seed}" / f"run-{repeat}"
                folders.append(folder)
                if (folder / "results.json").is_file():
                    print(f"{folder}: finished, kept", flush=True)
                    continue
                command = [sys.executable, "-m", "risc_tf", "reproduce", "--dataset",
                           args.dataset, *base, "--seed", str(seed), "--output", str(folder),
                           "--overwrite", "--quiet", *SETTINGS[setting]]
                print(" ".join(command[1:]), flush=True)
                subprocess.run(command, check=True, env=os.environ)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("run", help="train every setting x seed x repeat, then summarise")
    p.add_argument("--output", type=Path, required=True)
    p.add_argument("--dataset", default="pneumoniamnist")
    p.add_argument("--data-root", help="folder holding the .npz (default: the library's)")
    p.add_argument("--seeds", type=lambda t: [int(s) for s in t.split(",")], default=[0, 1])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--settings", type=lambda t: t.split(","), default=list(SETTINGS),
                   help="comma-separated: ordinary, deterministic (default both)")
    s = sub.add_parser("summarize", help="summarise finished run folders")
    s.add_argument("runs", nargs="+", type=Path)
    s.add_argument("--output", type=Path, required=True)
    args, forwarded = parser.parse_known_args(argv)
    if args.mode == "summarize":
        if forwarded:
            parser.error(f"unknown arguments: {' '.join(forwarded)}")
        write(summarize(args.runs), args.output)
        return 0
    unknown = [s for s in args.settings if s not in SETTINGS]
    if unknown or args.repeats < 2 or any(seed < 0 for seed in args.seeds):
        parser.error("--settings takes ordinary and/or deterministic, --repeats at least 2, "
                     "--seeds non-negative integers")
    write(summarize(run(args, forwarded)), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())

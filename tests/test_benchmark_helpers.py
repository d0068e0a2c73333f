"""The pure helpers of the benchmarks (no model, no run)."""

import argparse

import pytest

from benchmarks.bench_predict_throughput import compare, parse_variant


def test_a_variant_names_a_folder_with_risc_tf_and_its_predict_options(tmp_path):
    (tmp_path / "risc_tf").mkdir()
    (tmp_path / "risc_tf" / "__init__.py").write_text("")
    name, source, extra = parse_variant(f"after={tmp_path}::--batch-size 64")
    assert (name, source, extra) == ("after", tmp_path.resolve(), ["--batch-size", "64"])
    assert parse_variant(f"before={tmp_path}")[2] == []
    with pytest.raises(argparse.ArgumentTypeError, match="holds no risc_tf package"):
        parse_variant(f"x={tmp_path / 'risc_tf'}")
    with pytest.raises(argparse.ArgumentTypeError, match="NAME=SRC"):
        parse_variant(str(tmp_path))


def test_rounds_are_compared_pair_by_pair_against_the_first_variant():
    base = [50.0, 42.0, 46.0, 51.0, 47.0, 43.0, 60.0, 44.0, 49.0, 45.0]  # a noisy machine
    faster = [t - 2.0 - 0.1 * i for i, t in enumerate(base)]  # 2 s less in every round
    times = {"before": base, "after": faster, "same": list(base)}
    cpu = {"before": [70.0] * 10, "after": [68.0] * 10, "same": [70.0] * 10}
    summary = compare(times, cpu, 10000)
    assert summary["before"]["files_per_s"] == round(10000 / 46.5, 1)
    wall = summary["after"]["wall"]
    assert wall["lower_rounds"] == 10 and wall["median_difference"] == pytest.approx(-2.45)
    assert wall["wilcoxon_p"] < 0.01
    assert summary["after"]["cpu"]["median_difference"] == -2.0
    assert summary["same"]["wall"]["wilcoxon_p"] == 1.0 and "against" not in summary["before"]


@pytest.mark.slow
def test_the_load_benchmark_loads_in_a_fresh_process_from_the_source_it_names(tmp_path):
    from pathlib import Path

    from benchmarks.bench_pipeline_load import load_once
    from benchmarks.bench_predict_memory import make_pipeline

    pipeline = str(make_pipeline(tmp_path / "pipeline"))
    root = Path(__file__).resolve().parents[1]
    wall, cpu = load_once(pipeline, root, fold=True, cwd=str(tmp_path))
    assert wall > 0 and cpu > 0
    other = tmp_path / "other"
    (other / "risc_tf").mkdir(parents=True)  # holds no loadable risc_tf: the run fails
    (other / "risc_tf" / "__init__.py").write_text("raise ImportError('not this one')\n")
    with pytest.raises(RuntimeError, match="failed"):
        load_once(pipeline, other, fold=False, cwd=str(tmp_path))

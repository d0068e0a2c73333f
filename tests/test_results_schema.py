"""The typed results schema: every committed results.json reads back, exactly; old and
foreign files get an error that names the version or the field."""

import json
from pathlib import Path

import pytest

from risc_tf.experiments.results import (
    SCHEMA_VERSION,
    AggregateResults,
    RunResults,
    load_results,
)
from risc_tf.verdicts import VERDICTS

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"
FILES = sorted(RESULTS.glob("**/results.json"))
SEED_RUN = RESULTS / "pneumoniamnist-tuned" / "seed-0" / "results.json"
AGGREGATE = RESULTS / "pneumoniamnist-tuned" / "results.json"


def _version_0(path: Path) -> bool:
    return "rotated_test_acc" in json.loads(path.read_text()).get("rotnet", {})


@pytest.mark.parametrize("path", [f for f in FILES if not _version_0(f)],
                         ids=lambda p: str(p.relative_to(RESULTS)))
def test_committed_results_read_back_exactly(path):
    results = load_results(path)
    expected = json.loads(path.read_text())
    kind = AggregateResults if expected.get("kind") == "aggregate" else RunResults
    assert isinstance(results, kind)
    assert results.schema_version == expected.get("schema_version", 1)
    written = results.to_json()
    written.pop("schema_version")
    expected.pop("schema_version", None)
    assert written == expected


def test_a_run_reads_by_attribute():
    results = load_results(SEED_RUN)
    assert results.dataset.name == "pneumoniamnist"
    assert results.evaluation.rotated["risc_hard"].acc == pytest.approx(
        json.loads(SEED_RUN.read_text())["evaluation"]["rotated"]["risc_hard"]["acc"])
    assert results.correct("risc_hard").shape == (len(results.test_labels),)
    aggregate = load_results(AGGREGATE)
    assert aggregate.summary.tests["risc_hard"]["rotation_augmented"].verdict in VERDICTS


def test_risc_tf_0_1_files_are_refused_by_version():
    old = next(f for f in FILES if _version_0(f))
    with pytest.raises(ValueError, match="risc_tf 0.1 \\(results schema version 0\\)"):
        load_results(old)


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(schema_version=SCHEMA_VERSION + 1),
     f"schema version {SCHEMA_VERSION + 1}; this risc_tf reads versions 1 to"),
    (lambda d: d["sweep"].update(novel_metric=1.0),
     "sweep has fields this risc_tf does not know: \\['novel_metric'\\]"),
    (lambda d: d["evaluation"]["rotated"]["risc_hard"].pop("acc"),
     "risc_hard lacks the fields \\['acc'\\]"),
    (lambda d: d.update(training=[1, 2]), "training must be a JSON object; got list"),
])
def test_files_that_do_not_fit_name_the_problem(tmp_path, change, message):
    data = json.loads(SEED_RUN.read_text())
    change(data)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        load_results(path)


def test_not_json_names_the_file(tmp_path):
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="results.json is not readable JSON"):
        load_results(path)

"""Docs stay true: one API page per public name and module, README set-up commands in place."""

import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import risc_tf

ROOT = Path(__file__).resolve().parents[1]


def _make_api():
    spec = importlib.util.spec_from_file_location("make_api", ROOT / "docs" / "make_api.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_every_public_name_has_an_up_to_date_api_page():
    result = subprocess.run(
        [sys.executable, str(ROOT / "docs" / "make_api.py"), "--check"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for name in risc_tf.__all__:
        assert (ROOT / "docs" / "api" / f"{name}.md").is_file()


def test_every_public_module_page_lists_each_name_of_its_all():
    modules = _make_api().MODULES
    assert {"risc_tf.explain", "risc_tf.evaluation"} <= set(modules)
    index = (ROOT / "docs" / "api" / "index.md").read_text()
    for module_name in modules:
        text = (ROOT / "docs" / "api" / f"{module_name}.md").read_text()
        assert f"]({module_name}.md)" in index
        for name in importlib.import_module(module_name).__all__:
            assert f"\n## {name}\n" in text, f"{module_name}.{name} is not on its page"
            assert f"`{module_name}.{name}`" in text


def test_readme_opens_with_a_title_and_the_two_set_up_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[1] == ""
    assert lines[2] == "```bash" and lines[5] == "```"
    install_and_run, run_tests = lines[3], lines[4]
    assert "pip install" in install_and_run and "../shared/data/medmnist" in install_and_run
    assert "risc-tf reproduce" in install_and_run and "--recipe tuned" in install_and_run
    assert "python -m pytest" in run_tests
    assert "--download" in "\n".join(lines[6:12])  # how a user without ../shared gets data
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'grep -m1 "python -m pytest" README.md' in ci


def test_readme_development_section_names_the_quick_tier_and_the_marker_exists():
    text = (ROOT / "README.md").read_text()
    development = text.split("\n## Development\n", 1)[1].split("\n## ", 1)[0]
    quick = [line for line in development.splitlines() if '-m "not slow"' in line]
    assert quick and quick[0].startswith("python -m pytest -q")
    assert "slow:" in (ROOT / "setup.cfg").read_text()  # the marker the quick tier leaves out


def _make_results():
    spec = importlib.util.spec_from_file_location("make_results", ROOT / "docs" / "make_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_tables_are_rebuilt_from_the_committed_aggregates():
    assert _make_results().main(["--check"]) == 0, "run python docs/make_results.py"


def test_published_commands_name_a_relative_output_folder():
    published = _make_results().published_command
    recorded = ("python -m risc_tf reproduce --data-root ../shared/data/medmnist --seeds 0,1,2 "
                "--dataset retinamnist --output /work/runs/final/retinamnist-tuned")
    assert published(recorded, "retinamnist-tuned").endswith(
        "--dataset retinamnist --output runs/final/retinamnist-tuned")
    assert published("risc-tf reproduce --output=/tmp/x", "a") == (
        "risc-tf reproduce --output=runs/final/a")
    assert published("risc-tf reproduce --output runs/b", "a") == (
        "risc-tf reproduce --output runs/b")
    for page in (ROOT / "README.md", ROOT / "docs" / "results.md", ROOT / "docs" / "recipe.md"):
        text = page.read_text()
        assert "--output /" not in text and "/work/" not in text, f"{page.name}: a machine's folder"


@pytest.mark.slow
def test_readme_python_example_runs(data_root, tmp_path, monkeypatch):
    """The README's example, shrunk: tiny backbone, one epoch, a few real images."""
    text = (ROOT / "README.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    code = code.replace('"../shared/data/medmnist"', repr(str(data_root)))
    code = code.replace('backbone="resnet50"', 'backbone="small"').replace("epochs=10", "epochs=1")
    lines = code.splitlines()
    last_load = max(i for i, line in enumerate(lines) if "load_medmnist(" in line)
    lines.insert(last_load + 1, "x, y, xv, yv, xt, yt = (a[:64] for a in (x, y, xv, yv, xt, yt))")
    assert code.count('backbone="small"') == 2
    monkeypatch.chdir(tmp_path)
    exec(compile("\n".join(lines), "README.md", "exec"), {})
    assert (tmp_path / "runs" / "pneumonia-pipeline").is_dir()


@pytest.mark.slow
def test_getting_started_python_runs_in_order(data_root, tmp_path, monkeypatch):
    """docs/getting_started.md's Python blocks, one after the other, shrunk as above."""
    text = (ROOT / "docs" / "getting_started.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    code = "\n".join(blocks).replace('"../shared/data/medmnist"', repr(str(data_root)))
    code = code.replace('backbone="resnet50"', 'backbone="small"').replace("epochs=10", "epochs=1")
    assert code.count("subset=500") == 1 and code.count('backbone="small"') == 2
    code = code.replace("subset=500", "subset=64")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "getting_started.md", "exec"), {})
    assert (tmp_path / "runs" / "pipe" / "risc_pipeline.json").is_file()

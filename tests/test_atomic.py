"""risc_tf.atomic: one swap-into-place with rollback, for folders (pipelines, SavedModels) and
files (.tflite, .onnx)."""

import os

import pytest

from risc_tf.atomic import swap_into_place, temporary_folder


def _folder(path, text):
    path.mkdir()
    (path / "model.txt").write_text(text)
    return path


def test_swap_puts_a_folder_or_a_file_in_place_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "export"
    with temporary_folder(target) as tmp:
        assert swap_into_place(_folder(tmp / "new", "first"), target) == target
    with temporary_folder(target) as tmp:  # over an existing (non-empty) folder
        swap_into_place(_folder(tmp / "new", "second"), target)
    assert (target / "model.txt").read_text() == "second"
    single = tmp_path / "risc.onnx"
    single.write_text("old")
    with temporary_folder(single) as tmp:
        (tmp / "new.onnx").write_text("new")
        swap_into_place(tmp / "new.onnx", single)
    assert single.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "risc.onnx"]


@pytest.mark.parametrize("kind", ["folder", "file over a folder"])
def test_a_failed_swap_puts_the_old_version_back(tmp_path, monkeypatch, kind):
    target = _folder(tmp_path / "export", "old")
    real, calls = os.replace, []

    def failing(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # the old one is aside; moving the new one in fails
            raise OSError("disk full")
        return real(src, dst)

    with temporary_folder(target) as tmp:
        if kind == "folder":
            new = _folder(tmp / "new", "new")
        else:
            new = tmp / "new"
            new.write_text("new")
        monkeypatch.setattr(os, "replace", failing)
        with pytest.raises(OSError, match="disk full"):
            swap_into_place(new, target)
        monkeypatch.undo()
    assert calls[0][0] == target and calls[1] == (new, target)
    assert (target / "model.txt").read_text() == "old"  # the old version, whole
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # nothing hidden left over

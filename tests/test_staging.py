"""risc_tf.staging (outputs put in place together, killed runs recovered) and risc_tf.progress."""

from __future__ import annotations

import doctest
import io
import os
import re

import pytest

import risc_tf.progress
import risc_tf.staging
from risc_tf.progress import Progress
from risc_tf.staging import Staging, recover

pytestmark = pytest.mark.skipif(risc_tf.staging.fcntl is None, reason="needs fcntl (POSIX)")


def _stage(home, tmp_path):
    staging = Staging(home)
    staging.file(tmp_path / "pred.csv").write_text("rows")
    copies = staging.folder_for(home / "copies")
    (copies / "ward").mkdir()
    (copies / "ward" / "a.png").write_bytes(b"png")
    final = staging.add(copies / "ward" / "a.png")
    return staging, final


def test_commit_puts_everything_in_place_and_abort_leaves_nothing(tmp_path):
    home = tmp_path / "up"
    home.mkdir()
    staging, final = _stage(home, tmp_path)
    assert final == home / "copies" / "ward" / "a.png" and not final.exists()
    assert not (tmp_path / "pred.csv").exists()  # nothing visible before the commit
    assert staging.commit() == 2
    assert (tmp_path / "pred.csv").read_text() == "rows" and final.read_bytes() == b"png"
    assert sorted(os.listdir(home)) == ["copies"]  # the hidden folder and lock are gone
    with pytest.raises(RuntimeError), Staging(home) as other:
        other.file(tmp_path / "other.csv").write_text("x")
        raise RuntimeError
    assert not (tmp_path / "other.csv").exists() and sorted(os.listdir(home)) == ["copies"]


def test_recover_removes_a_killed_run_finishes_a_committed_one_and_spares_a_live_one(tmp_path):
    home = tmp_path / "up"
    home.mkdir()
    live, _ = _stage(home, tmp_path)  # holds its lock: running
    killed, _ = _stage(home, tmp_path)
    os.close(killed._fd)  # what the system does when a process dies: the lock is released
    committing, final = _stage(home, tmp_path)
    committing._journal.close()
    (committing.folder / "committed").touch()  # killed after marking, before moving
    os.close(committing._fd)
    assert recover(home) == {"removed": 1, "finished": 1}
    assert not killed.folder.exists() and not killed.lock_path.exists()
    assert final.read_bytes() == b"png" and (tmp_path / "pred.csv").read_text() == "rows"
    assert not committing.folder.exists()
    assert live.folder.exists() and live.lock_path.exists()  # a live run is left alone
    assert recover(home) == {"removed": 0, "finished": 0}
    live.abort()
    assert sorted(os.listdir(home)) == ["copies"]
    assert recover(tmp_path / "missing") == {"removed": 0, "finished": 0}


def test_commit_reads_the_journal_a_record_at_a_time(tmp_path):
    """Putting 3,000 copies in place holds one journal record at a time: the memory the
    commit allocates does not grow with the copies (issue 22, item 4), and names with a
    newline, a NUL-free oddity Linux allows, still land where they belong."""
    import gc
    import tracemalloc

    home = tmp_path / "up"
    home.mkdir()

    def commit_peak(count: int) -> int:
        staging = Staging(home)
        staging.file(tmp_path / f"pred{count}.csv").write_text("rows")
        copies = staging.folder_for(home / f"copies{count}")
        for i in range(count):
            name = f"scan\n{i:05d}.png" if i % 100 == 0 else f"a-rather-long-name-{i:05d}.png"
            (copies / name).write_bytes(b"png")
            staging.add(copies / name)
        gc.collect()  # what earlier tests left for the collector is freed outside the measure
        tracemalloc.start()
        moved = staging.commit()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert moved == count + 1
        return peak

    small, large = commit_peak(300), commit_peak(3000)
    assert large - small < 200_000, (small, large)  # bytes; a list of every entry: ~2.5 MB
    assert len(os.listdir(home / "copies3000")) == 3000
    assert (home / "copies3000" / "scan\n00100.png").read_bytes() == b"png"
    assert (tmp_path / "pred3000.csv").read_text() == "rows"


def test_staging_docstring_example_holds():
    assert doctest.testmod(risc_tf.staging).failed == 0


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_plain_lines_off_a_terminal_and_one_redrawn_line_on_one():
    plain = io.StringIO()
    bar = Progress(200, stream=plain)
    for _ in range(200):
        bar.add(1)
    bar.close()
    bar.close()  # once
    lines = plain.getvalue().splitlines()
    assert len(lines) == 10 and lines[0].startswith("20/200 files (10%)")
    assert lines[-1].startswith("200/200 files (100%)")
    assert not re.search(r"[\r\b\x1b]", plain.getvalue())
    assert plain.getvalue().isascii()
    terminal = _Terminal()
    bar = Progress(3, stream=terminal, interval=0)
    for _ in range(3):
        bar.add(1)
    bar.close()
    text = terminal.getvalue()
    assert text.count("\r") == 4 and "\x1b" not in text and text.endswith("\n")
    assert "[" + "#" * 30 + "] 3/3 files" in text and text.isascii()
    with pytest.raises(ValueError, match="total"):
        Progress(-1)
    assert doctest.testmod(risc_tf.progress).failed == 0

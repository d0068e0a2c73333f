"""Issue 22's probe: how a case is classified, how commands run, what is looked at on disk.

Used by :mod:`probes.bad_inputs`; see its docstring for the classification.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from devdata import DATA_ROOT

DATASET = "pneumoniamnist"
#: What a clear error never holds: a traceback, an errno, an encoding failure.
RAW_MARKERS = ("Traceback (most recent call last)", "[Errno ", "surrogates not allowed",
               "codec can't encode", "codec can't decode")
#: An internal temporary file named in a message (issue 22, item 8).
TEMP_NAME = re.compile(r"\.[^\s/]+\.tmp\b")
KINDS = ("correct", "clear_error", "data_lost", "half_written", "silent_wrong",
         "valid_refused", "raw_error", "skipped")
DEFECTS = ("data_lost", "half_written", "silent_wrong", "valid_refused", "raw_error")
STAGING = ".risc-tf-staging."


@dataclass
class Case:
    """One case's record: what ran, its exit code, its kind and the short evidence."""

    item: str
    name: str
    command: str
    exit_code: int | None
    kind: str
    evidence: str
    seconds: float


def error_line(stderr: str) -> str:
    """The line of ``stderr`` that carries the error (the CLI's ``...: error: ...`` line,
    else an exception's last line, else the last line)."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ": error:" in ln or re.match(r"^\w+(Error|Exception)\b", ln):
            return ln
    return lines[-1] if lines else ""


def classify(valid: bool, code: int | None, stderr: str = "", *, names=(), lost=(),
             written=(), wrong=(), half=(), unclean=(), note: str = "") -> tuple[str, str]:
    """``(kind, evidence)`` of one case, from what happened.

    ``valid``: the input is valid (it should be handled); ``code``: the exit code (None:
    no answer in time, the probe stopped it); ``stderr``: what it printed there (or an
    exception as ``Type: message``); ``names``: words a clear refusal must contain;
    ``lost``: files that existed and were changed or removed; ``written``: what a refusal
    left on disk; ``wrong``: checks that failed (a valid run's outputs, or an option a
    refusal ignored); ``half``: outputs or
    temporaries a valid run left inconsistent; ``unclean``: anything else a refusal did
    that it should not have (e.g. images read before refusing); ``note`` is added to the
    evidence.
    """
    line = error_line(stderr)

    def out(kind: str, evidence: str) -> tuple[str, str]:
        return kind, "; ".join(x for x in (evidence, note) if x)

    if lost:
        return out("data_lost", "changed or removed: " + ", ".join(lost))
    if code is None:
        return out("raw_error", "no answer in time: stopped by the probe")
    raw = [m for m in RAW_MARKERS if m in stderr]
    if TEMP_NAME.search(line):
        raw.append("an internal temporary file named")
    if raw or code not in (0, 2):
        return out("raw_error", f"exit {code}, {', '.join(raw) or 'not a clear refusal'}: "
                                f"{line[:160]}")
    if valid:
        if code != 0:
            return out("valid_refused", line[:200])
        if half:
            return out("half_written", "; ".join(half))
        if wrong:
            return out("silent_wrong", "; ".join(wrong))
        return out("correct", "")
    if code == 0:
        return out("silent_wrong", "bad input accepted with exit 0")
    if written:
        return out("half_written", f"refused ({line[:240]}) but left " + ", ".join(written))
    if wrong:
        return out("silent_wrong", f"refused ({line[:140]}) but " + "; ".join(wrong))
    if unclean:
        return out("raw_error", f"{line[:140]}; but " + "; ".join(unclean))
    missing = [n for n in names if n.lower() not in line.lower()]
    if missing:
        return out("raw_error", f"message does not name {missing}: {line[:160]}")
    return out("clear_error", line[:200])


# -- running and looking at files --------------------------------------------------------
@dataclass
class Ran:
    code: int | None
    stdout: str
    stderr: str
    seconds: float
    utf8: bool  # both streams are valid UTF-8


class Probe:
    """The temporary folder, the shared fixtures and the cases recorded so far."""

    def __init__(self, tmp: Path, quiet: bool = False):
        self.tmp = tmp
        self.cases: list[Case] = []
        self.quiet = quiet

    def show(self, argv) -> str:
        """A command as text, the temporary folder as ``$TMP`` and the data as ``$DATA``."""
        words = [os.fsencode(a).decode("utf-8", "backslashreplace") if isinstance(a, bytes)
                 else str(a) for a in argv]
        text = shlex.join(words)
        return text.replace(str(self.tmp), "$TMP").replace(str(DATA_ROOT), "$DATA")

    def run(self, argv, *, env=None, timeout: float = 300.0) -> Ran:
        start = time.perf_counter()
        try:
            done = subprocess.run(argv, capture_output=True, timeout=timeout,
                                  env={**os.environ, **(env or {})})
            code, out, err = done.returncode, done.stdout, done.stderr
        except subprocess.TimeoutExpired as exc:
            code, out, err = None, exc.stdout or b"", exc.stderr or b""
        dec = functools.partial(bytes.decode, encoding="utf-8", errors="backslashreplace")
        try:
            out.decode("utf-8") + err.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
        return Ran(code, dec(out), dec(err), round(time.perf_counter() - start, 1), utf8)

    def cli(self, *args, **kw) -> Ran:
        return self.run([sys.executable, "-m", "risc_tf", *args], **kw)

    def add(self, item: str, name: str, command: str, code, verdict: tuple[str, str],
            seconds: float) -> Case:
        evidence = verdict[1].replace(str(self.tmp), "$TMP")
        case = Case(item, name, command, code, verdict[0], evidence, seconds)
        self.cases.append(case)
        if not self.quiet:
            print(f"  [{case.kind:>13}] {item:>4} {name} ({seconds:.0f} s)", flush=True)
        return case


def snapshot(folder: Path) -> dict[str, str]:
    """Every file below ``folder`` (relative path -> SHA-256), folders as ``DIR/``."""
    found = {}
    if not folder.exists():
        return found
    for root, dirs, files in os.walk(folder):
        for d in dirs:
            found[os.path.relpath(os.path.join(root, d), folder) + "/"] = ""
        for f in files:
            path = os.path.join(root, f)
            found[os.path.relpath(path, folder)] = hashlib.sha256(
                Path(path).read_bytes()).hexdigest()
    return found


def changes(before: dict, after: dict) -> tuple[list[str], list[str]]:
    """``(lost, added)``: files changed or removed, and entries that are new."""
    lost = [p for p in before if p not in after or after[p] != before[p]]
    added = [p for p in after if p not in before]
    return sorted(lost), sorted(added)


def left(path: Path, tmp: Path) -> list[str]:
    """What exists at ``path`` (and below it), shown relative to the temporary folder."""
    if not path.exists():
        return []
    inside = sorted(snapshot(path)) if path.is_dir() else []
    top = os.path.relpath(path, tmp) + ("/" if path.is_dir() else "")
    return [top] + [f"{top}{p}" for p in inside[:5]] + (["..."] if len(inside) > 5 else [])


def hidden_and_temporary(*folders: Path) -> list[str]:
    """Staging folders, lock files and ``*.tmp`` files below ``folders``."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            for name in dirs + files:
                if name.startswith(STAGING) or name.endswith(".tmp"):
                    found.append(os.path.relpath(os.path.join(root, name), folder.parent))
    return sorted(found)


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))



def table(cases: list[Case]) -> str:
    rows = [("item", "case", "exit", "kind", "evidence")]
    rows += [(c.item, c.name, "-" if c.exit_code is None else str(c.exit_code), c.kind,
              c.evidence if len(c.evidence) <= 110 else c.evidence[:107] + "...")
             for c in cases]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4] for r in rows]
    lines.insert(1, "-" * min(160, max(len(ln) for ln in lines)))
    return "\n".join(lines)



"""Write docs/api/: one page per public name of risc_tf, one page per public module.

    python docs/make_api.py          # regenerate
    python docs/make_api.py --check  # exit 1 if a page is missing, stale or left over
                                     # (used by the tests)

Top-level names (``risc_tf.__all__``) get ``docs/api/<name>.md``: the signature
and the docstring. The modules of :data:`MODULES` hold names that users call as
``risc_tf.<module>.<name>`` (they are not top-level); each gets
``docs/api/risc_tf.<module>.md``: the module docstring, then every name of the
module's ``__all__`` with its signature and docstring. Lazy exports (a
package's ``__getattr__``) are resolved like any attribute.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import risc_tf  # noqa: E402

API = Path(__file__).resolve().parent / "api"

#: Public modules whose names users call directly but that are not top-level.
MODULES = (
    "risc_tf.calibration",
    "risc_tf.corrections",
    "risc_tf.decisions",
    "risc_tf.evaluation",
    "risc_tf.experiments",
    "risc_tf.explain",
    "risc_tf.export",
    "risc_tf.features",
    "risc_tf.figures",
    "risc_tf.heads",
    "risc_tf.io",
    "risc_tf.metrics",
    "risc_tf.ood",
    "risc_tf.ood_layers",
    "risc_tf.prediction_run",
    "risc_tf.review",
    "risc_tf.scans",
    "risc_tf.shards",
    "risc_tf.statistics",
    "risc_tf.straighten",
    "risc_tf.sweep",
    "risc_tf.thresholds",
    "risc_tf.trust",
    "risc_tf.verdicts",
)


def _plain(value) -> str:
    """repr without memory addresses or hash-order: functions and classes by name, sets sorted."""
    if isinstance(value, dict):
        return "{\n" + "".join(f"    {k!r}: {_plain(v)},\n" for k, v in value.items()) + "}"
    if isinstance(value, (set, frozenset)):
        items = ", ".join(repr(v) for v in sorted(value, key=repr))
        return f"{type(value).__name__}({{{items}}})"
    if isinstance(value, tuple) and any(callable(v) for v in value):
        return "(" + ", ".join(_plain(v) for v in value) + ")"
    if inspect.isclass(value) or inspect.isroutine(value):
        return getattr(value, "__qualname__", repr(value))
    return repr(value)


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj):
        return "function"
    if hasattr(obj, "__origin__"):  # e.g. Callable[[np.ndarray], np.ndarray]
        return "type alias"
    return "constant"


def _members(obj, name: str, level: str) -> str:
    """Public methods of a class that have a docstring, one heading each."""
    body = ""
    for attr, member in sorted(vars(obj).items()):
        func = getattr(member, "__func__", member)
        if isinstance(member, property):
            if attr.startswith("_") or not member.__doc__:
                continue
            body += f"\n{level} `{name}.{attr}` (property)\n\n{inspect.getdoc(member)}\n"
            continue
        if attr.startswith("_") or not inspect.isfunction(func) or not func.__doc__:
            continue
        title = f"{name}.{attr}{inspect.signature(func)}"
        body += f"\n{level} `{title}`\n\n{inspect.getdoc(func)}\n"
    return body


def describe(obj, name: str, level: str = "###") -> str:
    """Signature (or value) and docstring of one public object; methods under ``level``."""
    if inspect.isclass(obj) or inspect.isfunction(obj):
        try:
            signature = f"{name}{inspect.signature(obj)}"
        except (TypeError, ValueError):
            signature = name
        doc = inspect.getdoc(obj) or ""
        body = f"```python\n{signature}\n```\n\n{doc}\n"
        if inspect.isclass(obj):
            body += _members(obj, name, level)
        return body
    return f"```python\n{name} = {_plain(obj)}\n```\n"


def page(name: str) -> str:
    """The page of a top-level name ``risc_tf.<name>``."""
    obj = getattr(risc_tf, name)
    module = getattr(obj, "__module__", None) or "risc_tf"
    if _kind(obj) in ("constant", "type alias"):
        module = risc_tf._EXPORTS.get(name, module)
    return f"# `risc_tf.{name}` ({_kind(obj)}, defined in `{module}`)\n\n{describe(obj, name)}"


def module_page(module_name: str) -> str:
    """The page of a module: its docstring, then each name of its ``__all__``."""
    module = importlib.import_module(module_name)
    names = sorted(module.__all__)
    doc = inspect.getdoc(module) or ""
    text = (f"# `{module_name}` (module)\n\n{doc}\n\n"
            f"Names (`from {module_name} import ...`): "
            + ", ".join(f"[`{n}`](#{n.lower()})" for n in names) + ".\n")
    for n in names:
        obj = getattr(module, n)  # lazy exports resolve through the module's __getattr__
        where = getattr(obj, "__module__", None) if _kind(obj) in ("class", "function") \
            else None
        defined = f", defined in `{where}`" if where and where != module_name else ""
        text += f"\n## {n}\n\n`{module_name}.{n}` ({_kind(obj)}{defined})\n\n"
        text += describe(obj, n, level="####")
    return text


def main(check: bool = False) -> int:
    pages = {f"{name}.md": page(name) for name in sorted(risc_tf.__all__)}
    modules = {f"{m}.md": module_page(m) for m in MODULES}
    index = (
        "# API reference\n\n"
        "Generated by `python docs/make_api.py` from the docstrings.\n\n"
        "## Top-level names\n\n"
        "Every public name of `risc_tf` (`from risc_tf import ...`), one page each.\n\n"
        + "".join(f"- [`{n[:-3]}`]({n})\n" for n in pages)
        + "\n## Modules\n\n"
        "Public modules whose names are not top-level (`from risc_tf.explain import "
        "...`), one page each, every name of the module's `__all__` on it.\n\n"
        + "".join(f"- [`{n[:-3]}`]({n})\n" for n in modules)
    )
    pages.update(modules)
    pages["index.md"] = index
    stale = [n for n, text in pages.items()
             if not (API / n).is_file() or (API / n).read_text() != text]
    extra = sorted(p.name for p in API.glob("*.md") if p.name not in pages) \
        if API.is_dir() else []
    if check:
        for n in stale:
            print(f"docs/api/{n} is missing or out of date; run python docs/make_api.py")
        for n in extra:
            print(f"docs/api/{n} documents no public name; run python docs/make_api.py")
        return 1 if stale or extra else 0
    API.mkdir(exist_ok=True)
    for n in stale:
        (API / n).write_text(pages[n])
    for n in extra:
        (API / n).unlink()
    print(f"wrote {len(stale)} of {len(pages)} pages into {API}"
          + (f"; deleted {', '.join(extra)}" if extra else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(check="--check" in sys.argv))

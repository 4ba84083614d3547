"""Write docs/api.md, the reference of the public Python API, from its signatures and docstrings.

    python docs/api_reference.py          # rewrites docs/api.md

``tests/test_docs.py`` fails when docs/api.md is not what this script writes, so a
changed docstring or signature cannot leave the page behind.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "api.md"

HEADER = """# API reference

[Documentation](README.md) · [Python](python.md)

Every public name of the `gender_cli` package, with its signature and docstring, written
by `python docs/api_reference.py` (a test checks that this page is current). The
[Python page](python.md) shows them at work.
"""


def sections():
    """(heading, object, members) in page order; members are (name, object) pairs."""
    import gender_cli
    from gender_cli import api, errors
    from gender_cli.classifier import Classifier, Prediction, Predictions
    from gender_cli.infer.classify import ClassifySummary
    from gender_cli.infer.engine_ray import RayOptions
    from gender_cli.infer.session import ModelInfo

    def public(cls, names):
        return [(f"{cls.__name__}.{name}", inspect.getattr_static(cls, name)) for name in names]

    return [
        ("gender_cli.Classifier", Classifier,
         public(Classifier, ["predict", "iter", "classify", "info", "path", "providers", "notice", "face_settings"])),
        ("gender_cli.Prediction", Prediction, public(Prediction, ["ok", "category", "to_dict"])),
        ("gender_cli.Predictions", Predictions, public(Predictions, ["to_dicts", "to_pandas"])),
        ("gender_cli.convert", api.convert, []),
        ("gender_cli.train", api.train, []),
        ("gender_cli.export", api.export, []),
        ("gender_cli.evaluate", api.evaluate, []),
        ("gender_cli.api.ConvertResult", api.ConvertResult, []),
        ("gender_cli.infer.session.ModelInfo", ModelInfo, public(ModelInfo, ["image_size", "source_format"])),
        ("gender_cli.infer.classify.ClassifySummary", ClassifySummary,
         public(ClassifySummary, ["images_per_second", "all_classified"])),
        ("gender_cli.infer.engine_ray.RayOptions", RayOptions, []),
        ("gender_cli.errors.GenderCliError", errors.GenderCliError, []),
        ("gender_cli.errors.RequestError", errors.RequestError, []),
    ] if gender_cli else []


def markdown_doc(doc: str | None) -> str:
    """A reStructuredText docstring as Markdown: ``code`` -> `code`, roles dropped, and a
    paragraph ending in ``::`` followed by its indented block -> a Python code block."""
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    index = 0
    while index < len(lines):
        line = _inline(lines[index])
        index += 1
        if not line.rstrip().endswith("::"):
            out.append(line)
            continue
        out.append(line.rstrip()[:-1])
        block = []
        while index < len(lines) and (not lines[index].strip() or lines[index].startswith("    ")):
            block.append(lines[index][4:])
            index += 1
        while block and not block[-1].strip():
            block.pop()
        while block and not block[0].strip():
            block.pop(0)
        out += ["", "```python", *block, "```", ""]
    return "\n".join(out).strip()


def _inline(line: str) -> str:
    line = re.sub(r":(?:class|func|data|meth|attr|mod):`~?([^`]+)`", r"`\1`", line)
    return re.sub(r"``([^`]+)``", r"`\1`", line)


def _parameters(sig: inspect.Signature, drop_self: bool) -> str:
    words = []
    for parameter in sig.parameters.values():
        if drop_self and parameter.name == "self":
            continue
        word = ("**" if parameter.kind is parameter.VAR_KEYWORD else "*" if parameter.kind is parameter.VAR_POSITIONAL
                else "") + parameter.name
        if parameter.annotation is not parameter.empty:
            word += f": {parameter.annotation}"
        if parameter.default is not parameter.empty:
            word += f" = {parameter.default!r}"
        words.append(word)
    returns = "" if sig.return_annotation is sig.empty else f" -> {sig.return_annotation}"
    return f"({', '.join(words)}){returns}"


def signature(name: str, obj) -> str:
    short = name.rsplit(".", 1)[-1]
    if isinstance(obj, property):
        annotation = inspect.signature(obj.fget).return_annotation
        return f"{short}: {annotation}" if annotation is not inspect.Signature.empty else short
    if inspect.isclass(obj):
        if dataclasses.is_dataclass(obj):
            return f"{short}({', '.join(f'{f.name}: {f.type}' for f in dataclasses.fields(obj) if f.repr)})"
        try:
            return short + _parameters(inspect.signature(obj.__init__), drop_self=True).split(" -> ")[0]
        except (TypeError, ValueError):
            return short
    return short + _parameters(inspect.signature(obj), drop_self=True)


def member_doc(obj) -> str | None:
    return (obj.fget if isinstance(obj, property) else obj).__doc__


def render() -> str:
    parts = [HEADER]
    for heading, obj, members in sections():
        parts += [f"## {heading}", "", f"```python\n{signature(heading, obj)}\n```", "", markdown_doc(obj.__doc__), ""]
        for name, member in members:
            parts += [f"### {name}", "", f"```python\n{signature(name, member)}\n```", "",
                      markdown_doc(member_doc(member)), ""]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parts)).rstrip() + "\n"


def main() -> int:
    PAGE.write_text(render())
    print(f"wrote {PAGE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

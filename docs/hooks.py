"""MkDocs hooks (``hooks:`` in mkdocs.yml): the parts of the site generated from the code at build time.

* **CLI reference.** A page containing ``<!-- recsift-cli-reference -->`` gets one section per command
  of the typer app ``recsift.cli:app`` (via ``typer.main.get_command``, recursing into sub-commands such
  as ``recsift datasets``), each holding the command's ``--help`` text as click formats it, so the page
  always matches the installed CLI. ``tests/test_docs.py`` checks it against its own walk of the app.
* **Config tables.** ``<!-- recsift-fields: module.Class -->`` becomes a table of a pydantic model's
  fields (type, default, description), e.g. ``TrainConfig`` and the experiment config.
* **Benchmark figures.** ``bench/results/*.png`` are published beside the benchmark pages, so a results
  table included verbatim (pymdownx.snippets) can show its own image.
* **Docstrings.** griffe's numpy parser is taught the singular ``Example`` section heading.
"""
from __future__ import annotations

import re
from collections.abc import Iterator

MARKER = "<!-- recsift-cli-reference -->"


def _accept_singular_example_sections() -> None:
    """Let griffe's numpy parser read an ``Example`` section like ``Examples``.

    recsift's docstrings head their doctests ``Example`` (33 of them); numpydoc and griffe only
    know ``Examples``, and would render the doctest as a Markdown block quote. Docs-side fix, so
    the source needs no change; harmless if griffe already knows the singular.
    """
    try:
        from griffe._internal.docstrings import numpy as _np_docstrings
        from griffe._internal.enumerations import DocstringSectionKind
    except ImportError:  # another griffe layout: the sections then render as admonitions
        return
    _np_docstrings._section_kind.setdefault("example", DocstringSectionKind.examples)


_accept_singular_example_sections()


def _walk(cmd, path: list[str], parent=None) -> Iterator[tuple[list[str], object, object]]:
    import click

    ctx = click.Context(cmd, info_name=path[-1], parent=parent, terminal_width=100, max_content_width=100)
    yield path, cmd, ctx
    if hasattr(cmd, "list_commands"):  # a group (typer's TyperGroup)
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is not None and not getattr(sub, "hidden", False):
                yield from _walk(sub, [*path, name], ctx)


def cli_commands() -> list[tuple[str, str, str]]:
    """``(command path, one-line summary, full --help text)`` for every command, root first."""
    import typer

    from recsift.cli import app

    out = []
    for path, cmd, ctx in _walk(typer.main.get_command(app), ["recsift"]):
        cmd.rich_markup_mode = None  # plain click formatting instead of typer's rich panels
        help_text = cmd.get_help(ctx)
        summary = (cmd.help or "").strip().split("\n\n")[0]
        out.append((" ".join(path), " ".join(summary.split()), help_text))
    return out


def cli_markdown() -> str:
    cmds = cli_commands()
    lines = ["| command | what it does |", "|---|---|"]
    for name, summary, _ in cmds[1:]:
        anchor = name.replace(" ", "-")
        lines.append(f"| [`{name}`](#{anchor}) | {summary.replace('|', '/')} |")
    lines.append("")
    for name, summary, help_text in cmds:
        anchor = name.replace(" ", "-")
        lines += [f"## `{name}` {{#{anchor}}}", "", summary, "", "```text", help_text.rstrip(), "```", ""]
    return "\n".join(lines)


def on_files(files, config):
    """Publish the figures of ``bench/results/`` beside the benchmark pages (``benchmarks/<name>.png``), so
    that a results table included verbatim can show its own ``![...](<name>.png)`` image."""
    from pathlib import Path

    from mkdocs.structure.files import File

    results = Path(config.config_file_path).parent / "bench" / "results"
    for png in sorted(results.glob("*.png")):
        files.append(File.generated(config, f"benchmarks/{png.name}", abs_src_path=str(png)))
    return files


FIELDS = re.compile(r"<!-- recsift-fields: ([\w.]+) -->")


def fields_markdown(dotted: str) -> str:
    """A table of a pydantic model's fields (name, type, default, description), read from the class."""
    import importlib
    from pathlib import PurePath

    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for fname, f in cls.model_fields.items():
        if f.default_factory is not None:
            try:
                value = f.default_factory()
            except TypeError:  # a factory that needs the validated data
                value = "(computed)"
        else:
            value = None if f.is_required() else f.default
        default = "required" if f.is_required() else repr(str(value) if isinstance(value, PurePath) else value)
        ann = f.annotation.__name__ if isinstance(f.annotation, type) else str(f.annotation)
        ann = re.sub(r"\b(typing|pathlib|recsift\.[\w.]+)\.", "", ann)
        desc = (f.description or "").replace("|", "/")
        rows.append(f"| `{fname}` | `{ann}` | `{default}` | {desc} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 (mkdocs hook signature)
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, cli_markdown())
    return FIELDS.sub(lambda m: fields_markdown(m.group(1)), markdown)

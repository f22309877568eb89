"""The documentation site: it builds with ``mkdocs build --strict``, its command-line reference lists
every command of the typer app, and the Python examples marked ``<!-- docs-test -->`` run and print
what the page says they print.

The build tests are skipped when mkdocs (with mkdocs-material and mkdocstrings-python) is not
installed — except under ``CI=true``, where a missing docs toolchain is a failure. The examples run
without mkdocs. A marker ``<!-- docs-test needs=magazine -->`` names staged datasets a page's
examples read (that page is skipped when one is not under ``RECSIFT_DATA_DIR``); ``needs=...,slow``
marks examples that train for many minutes (run only with ``RECSIFT_DOCS_SLOW=1``).
"""
from __future__ import annotations

import html
import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RUN_MARK = "<!-- docs-test -->"
RUN_RE = re.compile(r"<!-- docs-test(?: needs=([\w,.-]+))? -->\s*\n")
OUT_MARK = "<!-- docs-output -->"


def _page_needs(md: str) -> set[str]:
    return {n for m in RUN_RE.finditer(md) if m.group(1) for n in m.group(1).split(",")}


def _unmet(needs: set[str]) -> list[str]:
    """The needs of a page this run cannot meet (datasets not staged, slow examples not asked for)."""
    from recsift.data.registry import dataset_folder

    out = []
    for need in sorted(needs):
        if need == "slow":
            if os.environ.get("RECSIFT_DOCS_SLOW") != "1":
                out.append("slow (set RECSIFT_DOCS_SLOW=1)")
            continue
        try:
            dataset_folder(need)
        except Exception:
            out.append(f"dataset {need} (set RECSIFT_DATA_DIR)")
    return out


def _require_docs_toolchain() -> None:
    missing = [m for m in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers", "pymdownx")
               if importlib.util.find_spec(m) is None]
    if missing:
        msg = f"docs toolchain not installed ({', '.join(missing)}): pip install mkdocs-material mkdocstrings-python"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once with ``--strict`` (any warning fails) into a temporary folder."""
    _require_docs_toolchain()
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def _typer_commands() -> list[str]:
    """Every command path of ``recsift.cli:app`` (``recsift``, ``recsift demo``, ``recsift datasets list``, ...)."""
    import click
    import typer

    from recsift.cli import app

    found: list[str] = []

    def walk(cmd: click.Command, path: list[str], parent: click.Context | None) -> None:
        ctx = click.Context(cmd, info_name=path[-1], parent=parent)
        found.append(" ".join(path))
        if hasattr(cmd, "list_commands"):
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                if sub is not None and not sub.hidden:
                    walk(sub, [*path, name], ctx)

    walk(typer.main.get_command(app), ["recsift"], None)
    return found


def test_site_builds_strict(site: Path) -> None:
    for page in ("index.html", "getting-started/index.html", "reference/cli/index.html",
                 "reference/api/index.html", "benchmarks/distill/index.html"):
        assert (site / page).is_file(), page
    api = (site / "reference/api/index.html").read_text()
    assert 'id="recsift.api.curate"' in api and 'id="recsift.distill.InfiniteAE"' in api  # mkdocstrings ran
    bench = (site / "benchmarks/distill/index.html").read_text()
    assert "AMD EPYC" in bench and "Command:" in bench  # bench/results tables included with machine and command


def test_cli_page_lists_every_command(site: Path) -> None:
    page = html.unescape(re.sub(r"<[^>]+>", "", (site / "reference/cli/index.html").read_text()))
    raw = (site / "reference/cli/index.html").read_text()
    commands = _typer_commands()
    assert len(commands) > 5 and "recsift datasets list" in commands  # the walk recursed into sub-commands
    for name in commands:
        assert f'id="{name.replace(" ", "-")}"' in raw, f"no section for {name!r} on the CLI page"
        assert f"Usage: {name} " in page, f"no --help text for {name!r} on the CLI page"


def _page_examples(md: str) -> list[tuple[str, str | None]]:
    """``(code, expected output or None)`` for every python block marked ``docs-test`` in a page."""
    fence = re.compile(r"```(\w*)[^\n]*\n(.*?)\n```", re.S)
    out = []
    for m in RUN_RE.finditer(md):
        block = fence.match(md, m.end())
        assert block and block.group(1) == "python", f"{RUN_MARK} must precede a python block"
        expected = None
        rest = md[block.end():]
        nxt = re.match(r"\s*(?:[^\n`<]*\n\s*)?" + re.escape(OUT_MARK) + r"\s*\n", rest)
        if nxt:
            eblock = fence.match(rest, nxt.end())
            assert eblock, f"{OUT_MARK} must precede a code block"
            expected = eblock.group(2)
        out.append((textwrap.dedent(block.group(2)), expected))
    return out


PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if RUN_RE.search(p.read_text()))

#: runs every page's examples in one interpreter (imports paid once): each page in its own empty
#: folder and namespace, each block's stdout captured; prints one JSON object
_DRIVER = """
import contextlib, io, json, os, sys, traceback
pages = json.loads(sys.argv[1])
root = sys.argv[2]
out = {}
for i, (page, blocks) in enumerate(pages.items()):
    os.makedirs(os.path.join(root, str(i)))
    os.chdir(os.path.join(root, str(i)))
    ns, res = {"__name__": "__main__"}, []
    for code in blocks:
        buf = io.StringIO()
        try:
            with contextlib.redirect_stdout(buf):
                exec(compile(code, page, "exec"), ns)
        except BaseException:
            res.append({"out": buf.getvalue(), "error": traceback.format_exc()})
            break
        res.append({"out": buf.getvalue(), "error": None})
    out[page] = res
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def example_runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import json

    pages = {page: [code for code, _ in _page_examples((DOCS / page).read_text())] for page in PAGES
             if not _unmet(_page_needs((DOCS / page).read_text()))}
    env = {**os.environ, "RECSIFT_THREADS": os.environ.get("RECSIFT_THREADS", "2")}
    slow = os.environ.get("RECSIFT_DOCS_SLOW") == "1"
    proc = subprocess.run([sys.executable, "-c", _DRIVER, json.dumps(pages), str(tmp_path_factory.mktemp("examples"))],
                          env=env, capture_output=True, text=True, timeout=3600 if slow else 600)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_examples_are_marked() -> None:
    assert {"getting-started.md", "concepts.md", "tutorials/prune-your-csv.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_examples_run(page: str, example_runs: dict) -> None:
    """A page's marked examples run in order in one namespace (later blocks use earlier names), in an
    empty folder; each block followed by a ``docs-output`` block must print exactly that."""
    md = (DOCS / page).read_text()
    unmet = _unmet(_page_needs(md))
    if unmet:
        pytest.skip(f"{page} needs {', '.join(unmet)}")
    examples = _page_examples(md)
    runs = example_runs[page]
    for i, ((_, expected), run) in enumerate(zip(examples, runs)):
        assert run["error"] is None, f"{page}, example {i + 1} failed:\n{run['error']}"
        if expected is not None:
            assert run["out"].rstrip("\n") == expected.rstrip("\n"), f"{page}, example {i + 1} printed:\n{run['out']}"
    assert len(runs) == len(examples)

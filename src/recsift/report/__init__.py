"""The HTML report of a runs folder (``recsift report RUNS_DIR``): tables, figures and explanation
views read from the results table and the saved curation artifacts, never from models.

Example
-------
>>> from recsift.report import build_report
>>> path = build_report("runs/demo")  # doctest: +SKIP
"""
from .build import build_report, build_sections
from .runs import Runs, RunsDirError, load_runs
from .tables import cost_table, main_table, significance, transfer_table

__all__ = ["Runs", "RunsDirError", "build_report", "build_sections", "cost_table", "load_runs", "main_table",
           "significance", "transfer_table"]

from ..utils.callable_module import make_callable as _make_callable

_make_callable(__name__, "report")  # recsift.report(runs_dir) is recsift.api.report

"""Curators: choose which training units to keep within a budget, and say why (`curate`)."""
from . import builtin as _builtin  # noqa: F401  (registers the built-in curators)
from . import moe as _moe  # noqa: F401  (registers the moe curator)
from . import samplers as _samplers  # noqa: F401  (registers head_users, svp_cf)
from .base import (CURATORS, REASONS, CurationContext, CurationReport, Selection, Transformed, curate, fingerprint,
                   get_curator, list_curators, register_curator)
from .store import load_curated, save_curation

__all__ = ["CURATORS", "REASONS", "CurationContext", "CurationReport", "Selection", "Transformed", "curate",
           "fingerprint", "get_curator", "list_curators", "load_curated", "register_curator", "save_curation"]

"""The parts a report page is made of (sections, tables with per-cell attributes, embedded PNG
figures) and the number formats the sections share."""
from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


@dataclass
class Cell:
    text: str
    best: bool = False
    data: dict[str, str] = field(default_factory=dict)  # data-* attributes (exact values for tests and tools)
    cls: str = ""


@dataclass
class Table:
    columns: list[str]
    rows: list[list[Cell]]
    caption: str = ""
    id: str = ""


@dataclass
class Figure:
    name: str  # file name of the PNG
    alt: str
    png: bytes

    @property
    def uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Section:
    id: str
    title: str
    intro: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped, and why
    lines: list[str] = field(default_factory=list)  # plain-language findings
    html: str = ""  # trusted markup built here (the lookup widget)
    skipped: bool = False


def slug(*parts: Any) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(str(p) for p in parts)).strip("-").lower()[:80]


def skip(sid: str, title: str, note: str, intro: str = "") -> Section:
    return Section(sid, title, intro, notes=[note], skipped=True)


def pct(v: Any) -> str:
    return "–" if v is None or pd.isna(v) else f"{100 * v:.1f}%"


def num(v: Any, digits: int = 2) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:,.{digits}f}"


#: the sections in page order: id -> title
SECTIONS = {"curves": "Accuracy vs fraction of data kept", "main": "Main table",
            "transfer": "Transfer to unseen architectures", "cost": "Cost: time and memory",
            "embedding": "Embedding map: kept vs pruned", "popularity": "Item popularity: kept vs pruned",
            "agreement": "Expert agreement (MoE)", "lookup": "Why was a session kept or dropped?"}

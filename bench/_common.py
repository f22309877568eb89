"""Helpers shared by bench scripts: machine description and result writing."""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        mem_gb = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    import numpy
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb, "python": platform.python_version(),
            "numpy": numpy.__version__, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}


def write_result(name: str, payload: dict[str, Any], table_md: str) -> Path:
    """Write bench/results/<name>.json and <name>.md (atomically)."""
    from recsift.utils.io import write_json

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    payload = {"benchmark": name, "date": stamp, "command": " ".join(["python"] + sys.argv), "machine": machine(),
               **payload}
    out = write_json(RESULTS / f"{name}.json", payload)
    write_markdown(payload, table_md)
    return out


def write_markdown(payload: dict[str, Any], table_md: str) -> Path:
    """Write bench/results/<benchmark>.md (atomically) under the header of ``payload``: its date,
    machine and command (also for re-rendering an earlier result's table)."""
    from recsift.utils.io import write_atomic

    m = payload["machine"]
    header = f"# {payload['benchmark']}\n\n{payload['date']}; {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB; " \
             f"torch {m['torch']}\n\nCommand: `{payload['command']}`\n\n"
    return write_atomic(RESULTS / f"{payload['benchmark']}.md", lambda p: p.write_text(header + table_md + "\n"))


def dumps(x: Any) -> str:
    return json.dumps(x, indent=2)


def emit_json(obj: Any, out: str | None) -> None:
    """Print ``obj`` as one JSON line and, with ``out``, also write it there atomically (stdlib only:
    the RecBole side imports this from RecBole's own virtualenv)."""
    text = json.dumps(obj)
    if out:
        p = Path(out)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(p.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(p)
    print(text)


def checkpoint_path(cache_dir: str | None, *parts: Any) -> Path | None:
    """Where a bench's retrain keeps its per-epoch checkpoint (``<cache_dir>/checkpoints/``), so that
    the same command run again after an interruption continues the retrain; None without a cache dir."""
    if not cache_dir:
        return None
    name = "-".join(str(p) for p in parts).replace("/", "_")
    return Path(cache_dir) / "checkpoints" / f"{name}.pt"

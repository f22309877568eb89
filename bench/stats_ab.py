"""A/B of a hot path: this checkout against another git revision.

Cases: ``stats`` (the recorder's eager per-batch statistics, ``per_sample_stats`` on 2048 rows),
``step`` (one training step of ``--model``: forward on a batch of 256 sequences of 1–20 items, full
softmax cross-entropy, backward, Adam as the revision's trainer builds it) and ``regen`` (one
pre-training step of DR4SR's regenerator). This machine's throughput drifts by up to ±30% within
minutes, so the two versions are timed in alternating fresh processes (``--rounds`` pairs) and
compared by the median of each side. The other revision is checked out into a temporary git
worktree and put first on PYTHONPATH. Writes bench/results/stats_ab_<threads>t.{json,md} (stats),
step_ab_<model>_<threads>t.{json,md} (step) or step_ab_regenerator_<threads>t.{json,md} (regen).

Usage: python bench/stats_ab.py --ref 8d7d151 --rounds 5 --threads 1
       python bench/stats_ab.py --case step --model fmlp --ref HEAD~1 --items 12102
       python bench/stats_ab.py --case regen --ref HEAD~1 --items 12102
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# Each case is one process: PRELUDE, the case's ``make(n_items)`` (returns the call to time), RUNNER
# (two warm-up calls, then the median of 7 timed calls per item count, printed as JSON).
# argv: threads, items, model.
PRELUDE = """
import json, sys, time, torch, numpy as np
import torch.nn.functional as F
torch.set_num_threads(int(sys.argv[1]))
try:  # the library's optimizer where the revision has one (fused Adam), else torch's default
    from recsift.train.optim import adam
except ImportError:
    adam = torch.optim.Adam
"""
RUNNER = """
out = {}
for n_items in map(int, sys.argv[2].split(",")):
    torch.manual_seed(0)
    call = make(n_items)
    call(); call()
    ts = []
    for _ in range(7):
        t = time.perf_counter(); call(); ts.append(time.perf_counter() - t)
    out[n_items] = sorted(ts)[3] * 1e3
print(json.dumps(out))
"""
STATS = """
from recsift.train.dynamics import per_sample_stats
from recsift.train.losses import masked_log_softmax
def make(n_items):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2048, n_items + 1, generator=g) * 3
    lp = masked_log_softmax(z)
    y = torch.randint(1, n_items + 1, (2048,), generator=g)
    return lambda: per_sample_stats(z, y, lp)
"""
STEP = """
from recsift.models.registry import build_model
def make(n_items):
    m = build_model(sys.argv[3], n_items=n_items, max_len=50).train()
    opt = adam(m.parameters(), lr=1e-3)
    lengths = torch.randint(1, 21, (256,))
    seq = torch.zeros(256, 50, dtype=torch.long)
    for b, n in enumerate(lengths.tolist()):
        items = torch.randint(1, n_items + 1, (n,))
        if m.pad_left:
            seq[b, 50 - n:] = items
        else:
            seq[b, :n] = items
    y = torch.randint(1, n_items + 1, (256,))
    def step():
        loss = F.cross_entropy(m.logits(m(seq, lengths)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step
"""
# one pre-training step of DR4SR's regenerator: 256 (sequence, pattern) pairs, sources of 6-11 tokens
REGEN = """
from recsift.regen.regenerator import Regenerator, RegenConfig
def make(n_items):
    rng = np.random.default_rng(0)
    m = Regenerator(n_items, RegenConfig(epochs=1)).train()
    opt = adam(m.parameters(), lr=1e-3, betas=(0.9, 0.98), eps=1e-9)
    src = rng.integers(1, n_items + 1, (256, int(rng.integers(6, 12))))
    src[:, 0], src[:, -1] = m.sos, m.eos
    tgt = np.zeros((256, 6), np.int64)
    tgt[:, 0], tgt[:, 1:4], tgt[:, 4] = m.sos, src[:, 1:4], m.eos
    s, t = torch.from_numpy(src), torch.from_numpy(tgt)
    def step():
        loss, _ = m.loss(s, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step
"""
CASES = {name: PRELUDE + body + RUNNER for name, body in (("stats", STATS), ("step", STEP), ("regen", REGEN))}


def short_hash(rev: str) -> str | None:
    """The short commit hash of ``rev`` in this repository, or None when it names no commit."""
    res = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", "-q", "--short", f"{rev}^{{commit}}"],
                         capture_output=True, text=True)
    return res.stdout.strip() if res.returncode == 0 else None


def run(src: Path, a) -> dict[str, float]:
    env = {"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE"}
    res = subprocess.run([sys.executable, "-c", CASES[a.case], str(a.threads), a.items, a.model], env=env,
                         check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="git revision to compare against (the baseline)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--items", default="1683,12102", help="item counts (ml-100k, Beauty)")
    ap.add_argument("--case", choices=sorted(CASES), default="stats")
    ap.add_argument("--model", default="fmlp", help="the model of --case step")
    a = ap.parse_args()
    ref = short_hash(a.ref)  # a hash in the result, not "HEAD~1"
    if ref is None:
        raise SystemExit(f"--ref {a.ref}: not a commit of this repository (see git log --oneline)")
    a.ref = ref
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(wt), a.ref], check=True)
        try:
            sides = {"baseline": [], "this checkout": []}
            for r in range(a.rounds):  # alternate, so drift hits both sides alike
                sides["baseline"].append(run(wt / "src", a))
                sides["this checkout"].append(run(ROOT / "src", a))
                print(f"round {r}: baseline {sides['baseline'][-1]} this {sides['this checkout'][-1]}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)], check=False)
    rows = []
    for n in a.items.split(","):
        base = statistics.median(x[n] for x in sides["baseline"])
        new = statistics.median(x[n] for x in sides["this checkout"])
        rows.append({"items": int(n), "baseline_ms": round(base, 2), "this_ms": round(new, 2),
                     "speedup": round(base / new, 2)})
    head = short_hash("HEAD")
    what = {"stats": "Eager `per_sample_stats` on 2048 rows",
            "step": f"One {a.model} training step (batch 256, 1–20 items, full-softmax CE, backward, Adam)",
            "regen": "One pre-training step of DR4SR's regenerator (256 pairs, sources of 6–11 tokens, "
                     "restricted CE + memory entropy, backward, Adam)"}[a.case]
    md = [f"{what}, {a.threads} thread(s), median over {a.rounds} alternating process pairs (each the median "
          f"of 7 calls); baseline `{a.ref}`, this checkout `{head}`.", "",
          "| items | baseline ms/batch | this ms/batch | speed-up |", "|---|---|---|---|"]
    md += [f"| {r['items']:,} | {r['baseline_ms']} | {r['this_ms']} | {r['speedup']:.2f}x |" for r in rows]
    name = {"stats": f"stats_ab_{a.threads}t", "step": f"step_ab_{a.model}_{a.threads}t",
            "regen": f"step_ab_regenerator_{a.threads}t"}[a.case]
    write_result(name, {"ref": a.ref, "head": head, "threads": a.threads, "case": a.case, "model": a.model,
                        "rows": rows, "raw": sides}, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()

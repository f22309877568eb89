"""Curators ``dr4sr`` and ``dr4sr_plus``: regenerate the training set (and weight it).

``dr4sr``: mine patterns from the training sequences (`patterns.py`), pre-train the regenerator
on (sequence -> pattern) pairs (`regenerator.py`), regenerate patterns from every sequence by
hybrid inference (`inference.py`), and return one `TrainingSet` whose sequences are

* the original training sequences, ``original_copies`` times (segment 0),
* the mined patterns (segment 1, if ``include_patterns``),
* the distinct regenerated patterns of length >= 2 (segment 2, if ``include_regenerated``),

each trained as every prefix -> next item (the DR4SR sequence-to-sequence sample). The released
pipeline puts the original data in twice (``original_copies=2``); the default here is once, and
``original_copies=2, include_patterns=False, include_regenerated=False`` is the "original data
doubled" control. ``include_regenerated=False, original_copies=0`` is the "patterns as the
dataset" ablation; ``diversity=False`` the "without diversity promoter" one.

``dr4sr_plus``: the same data, weighted for one target model by the bi-level personalizer
(`personalizer.py`); the mined patterns keep weight 1.

Neither takes a budget. The regenerated data is cached in ``ctx`` (per training set, seed and
regeneration parameters), so ``dr4sr_plus`` for several target models regenerates once; with
``ctx.cache_dir`` set it is also saved there (``regen-<hash>/``), so later runs read it back,
and so are DR4SR+'s learnt weights (``regen-<hash>/plus-<hash>/``, per target model and
personalizer settings) and the pre-trained regenerator (``regenerator-<hash>/``, reused by
regenerations that differ only in gamma, decoding or how the set is assembled).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..curators.base import COST_PREFIX, CurationContext, Transformed, fingerprint, register_curator
from ..data import SequenceSamples, SequenceStore, TrainingSet
from ..errors import ConfigError
from ..train import TrainConfig
from ..utils.io import save_npz, write_json
from .inference import regenerate, unique_sequences
from .patterns import MinedPatterns, mine_patterns
from .personalizer import BilevelConfig, sample_weights, train_bilevel
from .regenerator import RegenConfig, Regenerator, embedding_from, pretrain, source_tokens, target_tokens

log = logging.getLogger(__name__)
SEGMENTS = ("original", "pattern", "regenerated")


@dataclass
class Regenerated:
    """A regenerated training set, the segment of each of its sequences, and what it cost."""

    train_set: TrainingSet
    segment: np.ndarray  # int8 per sequence of the new store (index into SEGMENTS)
    info: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # its cache folder under ``ctx.cache_dir`` (None without one)

    @property
    def sample_segment(self) -> np.ndarray:
        return self.segment[self.train_set.data.user]


def _sequences(train_set: TrainingSet) -> tuple[np.ndarray, np.ndarray, int]:
    """CSR of the whole sequences of the users present in ``train_set``."""
    d = train_set.data
    if not isinstance(d, SequenceSamples):
        raise ConfigError("dr4sr regenerates sequences; it needs a sequential training set (prefix samples)")
    users = np.unique(d.user)
    st = d.store
    lens = st.indptr[users + 1] - st.indptr[users]
    idx = np.repeat(st.indptr[users] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(lens.sum())
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), st.items[idx], st.n_items


def _concat(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    lens = np.concatenate([np.diff(p[0]) for p in parts])
    return np.concatenate([[0], np.cumsum(lens)]).astype(np.int64), np.concatenate([p[1] for p in parts])


def _init_table(train_set: TrainingSet, n_items: int, epochs: int, ctx: CurationContext, d: int) -> torch.Tensor:
    """Item table of a SASRec trained ``epochs`` epochs on ``train_set`` (the reference initialises
    the regenerator's embeddings from a pre-trained SASRec)."""
    from ..models.registry import build_model
    from ..train.trainer import SequenceTrainer

    net = build_model("sasrec", n_items=n_items, max_len=ctx.max_len, hidden_size=d)
    cfg = TrainConfig(epochs=epochs, batch_size=256, loss="bce", patience=None, seed=ctx.seed, max_len=ctx.max_len)
    SequenceTrainer(net, cfg).fit(train_set, None, mask_history=False)
    return embedding_from(net.item_embedding.weight, n_items)


def regenerate_dataset(train_set: TrainingSet, ctx: CurationContext, *, window: int = 5, min_support: int = 2,
                       max_patterns: int = 10, k_memories: int = 5, epochs: int = 40, diversity: bool = True,
                       gamma: float = 0.3, restrictive_steps: int = 0, max_steps: int = 25, init_epochs: int = 0,
                       original_copies: int = 1, include_patterns: bool = True, include_regenerated: bool = True,
                       decode_batch: int = 512) -> Regenerated:
    """DR4SR's regenerated training set for ``train_set`` (see the module docstring); memoised in ``ctx``."""
    args = dict(window=window, min_support=min_support, max_patterns=max_patterns, k_memories=k_memories,
                epochs=epochs, diversity=diversity, gamma=gamma, restrictive_steps=restrictive_steps,
                max_steps=max_steps, init_epochs=init_epochs, original_copies=original_copies,
                include_patterns=include_patterns, include_regenerated=include_regenerated)
    if original_copies < 0:
        raise ConfigError(f"original_copies must be >= 0, got {original_copies}")
    key = f"dr4sr|{fingerprint(train_set)}|{ctx.seed}|{sorted(args.items())}"
    if key in ctx._memo:
        return ctx._memo[key]
    indptr, items, n_items = _sequences(train_set)
    cost_key = f"{COST_PREFIX}regen|{key}"
    folder = _cache_folder(ctx, key, items, n_items, decode_batch)
    if folder is not None and (folder / "info.json").is_file():
        res = _load(folder, train_set)
        # read back, not produced: the runner adds these seconds so a row shows the cost from scratch
        ctx._memo[cost_key] = {"seconds": float(res.info.get("seconds", 0.0)), "cached": True}
    else:
        t_start = time.perf_counter()
        res = _produce(train_set, ctx, indptr, items, n_items, decode_batch, **args)
        wall = time.perf_counter() - t_start
        ctx._memo[cost_key] = {"seconds": wall, "cached": False}
        # from scratch: a pre-trained regenerator read back from the cache adds its training time
        res.info["seconds"] = round(wall + (res.info["pretrain_seconds"] if res.info.get("pretrain_cached") else 0), 2)
        if folder is not None:
            store = res.train_set.data.store
            save_npz(folder / "sequences.npz", indptr=store.indptr, items=store.items, segment=res.segment)
            write_json(folder / "info.json", {"key": key, "n_items": n_items, "info": res.info})  # last: marks it complete
    res.folder = folder
    ctx._memo[key] = res
    return res


def _produce(train_set: TrainingSet, ctx: CurationContext, indptr: np.ndarray, items: np.ndarray, n_items: int,
             decode_batch: int, *, window: int, min_support: int, max_patterns: int, k_memories: int, epochs: int,
             diversity: bool, gamma: float, restrictive_steps: int, max_steps: int, init_epochs: int,
             original_copies: int, include_patterns: bool, include_regenerated: bool) -> Regenerated:
    """Mine, pre-train (or read the pre-trained regenerator back), regenerate and assemble."""
    parts = [(indptr, items)] * original_copies
    segment = [np.zeros(len(indptr) - 1, np.int8)] * original_copies
    info: dict[str, Any] = {"n_sequences": len(indptr) - 1}
    if include_patterns or include_regenerated:
        t0 = time.perf_counter()
        mined = mine_patterns(indptr, items, window=window, min_support=min_support, max_per_seq=max_patterns,
                              seed=ctx.seed)
        info.update(mine_seconds=time.perf_counter() - t0, n_patterns=len(mined), n_pairs=len(mined.pair_seq))
        if include_patterns and len(mined):
            parts.append((mined.indptr, mined.items))
            segment.append(np.ones(len(mined), np.int8))
        if include_regenerated and len(mined):
            cfg = RegenConfig(k_memories=k_memories, epochs=epochs, diversity=diversity, max_src=ctx.max_len)
            pre_key = f"{fingerprint(train_set)}|{ctx.seed}|{window}|{min_support}|{max_patterns}|{init_epochs}|{cfg}"
            model = _pretrained(train_set, ctx, mined, indptr, items, n_items, cfg, init_epochs, pre_key, info)
            out = regenerate(model, indptr, items, gamma=gamma, max_steps=max_steps,
                             restrictive_steps=restrictive_steps, batch_size=decode_batch, seed=ctx.seed)
            info["inference_seconds"] = out["seconds"]
            uind, uitems = unique_sequences(out["indptr"], out["items"], min_len=2)
            info.update(n_decoded=len(out["source"]), n_regenerated=len(uind) - 1)
            if len(uind) > 1:
                parts.append((uind, uitems))
                segment.append(np.full(len(uind) - 1, 2, np.int8))
    if not parts:
        raise ConfigError("the regenerated training set is empty: keep original_copies >= 1 or include patterns")
    ind, its = _concat(parts)
    seg = np.concatenate(segment)
    info["sequences_per_segment"] = {s: int((seg == i).sum()) for i, s in enumerate(SEGMENTS)}
    return _regenerated(ind, its, n_items, seg, train_set, info)


def _pretrained(train_set: TrainingSet, ctx: CurationContext, mined: MinedPatterns, indptr: np.ndarray, items: np.ndarray,
                n_items: int, cfg: RegenConfig, init_epochs: int, key: str, info: dict[str, Any]) -> Regenerator:
    """The regenerator pre-trained on the mined (sequence -> pattern) pairs; with ``ctx.cache_dir``
    its weights are saved (``regenerator-<hash>/``) and read back by any regeneration that differs
    only in inference settings (gamma, decoding steps) or in how the set is assembled (copies of
    the original data, patterns in or out), so those sweeps skip the pre-training. Fills
    ``info`` with the pre-training history and seconds (``pretrain_cached`` when read back)."""
    folder = _cache_folder(ctx, f"regenerator|{key}", items, n_items, 0, prefix="regenerator")
    cached = folder is not None and (folder / "info.json").is_file()
    ckpt = folder / "pretrain_checkpoint.pt" if folder is not None else None  # an interrupted pre-training
    resumed = ckpt is not None and ckpt.is_file()
    torch.manual_seed(ctx.seed)
    init = (_init_table(train_set, n_items, init_epochs, ctx, cfg.d_model)
            if init_epochs and not cached and not resumed else None)  # a resumed run loads its own weights
    model = Regenerator(n_items, cfg, init, max_tgt=int(mined.lengths.max()) + 2)
    if cached:
        with np.load(folder / "weights.npz") as z:
            model.load_state_dict({k: torch.from_numpy(z[k]) for k in z.files})
        model.eval()
        info.update(json.loads((folder / "info.json").read_text())["info"], pretrain_cached=True)
        ctx._memo[f"{COST_PREFIX}regenerator|{key}"] = {"seconds": float(info["pretrain_seconds"]), "cached": True}
        log.info("dr4sr: pre-trained regenerator read back from %s", folder)
        return model
    src = source_tokens(indptr, items, mined.pair_seq, cfg.max_src, n_items)
    tgt = target_tokens(mined.indptr, mined.items, mined.pair_pattern, n_items)
    if ckpt is not None:
        folder.mkdir(parents=True, exist_ok=True)
    hist = pretrain(model, src, tgt, seed=ctx.seed, checkpoint=ckpt, fingerprint=key)
    # the epochs' own seconds: a pre-training resumed after an interruption counts its earlier epochs too
    pre = {"pretrain_history": hist, "pretrain_seconds": float(sum(h["seconds"] for h in hist))}
    info.update(pre, pretrain_cached=False)
    if folder is not None:
        save_npz(folder / "weights.npz", **{k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
        write_json(folder / "info.json", {"key": key, "info": pre})  # last: marks it complete
    return model


def _cache_folder(ctx: CurationContext, key: str, items: np.ndarray, n_items: int, decode_batch: int,
                  prefix: str = "regen") -> Path | None:
    """Where the regenerated set (or the pre-trained regenerator) for ``key`` lives under
    ``ctx.cache_dir`` (None without one). The folder name hashes the key, the item content of the
    source sequences and the decode batch (batching changes the sampling order of generative decoding)."""
    if ctx.cache_dir is None:
        return None
    h = hashlib.sha256(f"{key}|{n_items}|{decode_batch}".encode())
    h.update(np.ascontiguousarray(items, dtype=np.int64).tobytes())
    return Path(ctx.cache_dir) / f"{prefix}-{h.hexdigest()[:16]}"


def _load(folder: Path, train_set: TrainingSet) -> Regenerated:
    meta = json.loads((folder / "info.json").read_text())
    with np.load(folder / "sequences.npz") as z:
        ind, its, seg = z["indptr"], z["items"], z["segment"]
    log.info("dr4sr: regenerated set read back from %s", folder)
    return _regenerated(ind, its, int(meta["n_items"]), seg, train_set, {**meta["info"], "cached": True})


def _regenerated(indptr: np.ndarray, items: np.ndarray, n_items: int, segment: np.ndarray, train_set: TrainingSet,
                 info: dict[str, Any]) -> Regenerated:
    """The regenerated sequences as a training set: every prefix -> next item of each sequence."""
    store = SequenceStore(indptr, items, n_items)
    ts = TrainingSet(SequenceSamples.all_prefixes(store), provenance={**train_set.provenance, "regenerated": True})
    return Regenerated(ts, segment, info)


def _regen_args(params: dict[str, Any]) -> dict[str, Any]:
    """The curator's keyword arguments that `regenerate_dataset` takes."""
    import inspect

    names = [p.name for p in inspect.signature(regenerate_dataset).parameters.values() if p.kind is p.KEYWORD_ONLY]
    return {k: params[k] for k in names if k in params}


def _no_budget(name: str, budget: Any) -> None:
    if budget is not None:
        raise ConfigError(f"curator {name!r} regenerates the training set and takes no budget; leave it out")


def _public(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "pretrain_history"}


@register_curator("dr4sr", transform=True)
def dr4sr(train_set: TrainingSet, ctx: CurationContext, budget: Any, *, window: int = 5, min_support: int = 2,
          max_patterns: int = 10, k_memories: int = 5, epochs: int = 40, diversity: bool = True, gamma: float = 0.3,
          restrictive_steps: int = 0, max_steps: int = 25, init_epochs: int = 0, original_copies: int = 1,
          include_patterns: bool = True, include_regenerated: bool = True) -> Transformed:
    """DR4SR (Yin et al., KDD 2024): the regenerated training set, weight 1 everywhere.

    Example
    -------
    >>> from recsift.curators import curate, CurationContext
    >>> from recsift.data import load_split
    >>> split = load_split("synthetic")
    >>> ts, rep = curate(split.training_set(), "dr4sr", None, CurationContext(split=split), epochs=1)  # doctest: +SKIP
    """
    _no_budget("dr4sr", budget)
    res = regenerate_dataset(train_set, ctx, **_regen_args(locals()))
    return Transformed(res.train_set, kept=None, extra=_public(res.info))


def weight_histogram(w: np.ndarray, bins: int = 30) -> dict[str, list[float]]:
    """Counts of the learnt weights in ``bins`` equal bins between their minimum and maximum, and
    their quantiles (JSON-ready, for the curation summary and plots)."""
    w = np.asarray(w, np.float64)
    if not len(w):
        return {"edges": [], "counts": [], "quantiles": {}}
    lo, hi = float(w.min()), float(w.max())
    counts, edges = np.histogram(w, bins=bins, range=(lo, max(hi, lo + 1e-6)))
    qs = (0.1, 0.25, 0.5, 0.75, 0.9)
    return {"edges": edges.round(6).tolist(), "counts": counts.tolist(),
            "quantiles": {str(q): round(float(v), 4) for q, v in zip(qs, np.quantile(w, qs))}}


@register_curator("dr4sr_plus", transform=True)
def dr4sr_plus(train_set: TrainingSet, ctx: CurationContext, budget: Any, *, target: str = "sasrec",
               window: int = 5, min_support: int = 2, max_patterns: int = 10, k_memories: int = 5, epochs: int = 40,
               diversity: bool = True, gamma: float = 0.3, restrictive_steps: int = 0, max_steps: int = 25,
               init_epochs: int = 0, original_copies: int = 1, include_patterns: bool = True,
               include_regenerated: bool = True, bilevel_epochs: int = 30, warmup_epochs: int = 10,
               interval: int = 30, end_to_end: bool = False, tau_init: float = 10.0) -> Transformed:
    """DR4SR+: the DR4SR set with per-sample weights learnt for ``target`` by bi-level optimisation.

    ``tau_init`` is the personalizer's Gumbel temperature (the released code's 10, which gets no
    gradient there and so stays; its floor is 1): at 10 a weight is softmax(logits / 10), so
    the weights stay close to 0.5 unless the logits grow large."""
    from ..models.registry import build_model

    _no_budget("dr4sr_plus", budget)
    res = regenerate_dataset(train_set, ctx, **_regen_args(locals()))
    plus_args = dict(target=target, bilevel_epochs=bilevel_epochs, warmup_epochs=warmup_epochs, interval=interval,
                     end_to_end=end_to_end, max_len=ctx.max_len, tau_init=tau_init)
    folder = None
    if res.folder is not None:
        folder = res.folder / f"plus-{hashlib.sha256(repr(sorted(plus_args.items())).encode()).hexdigest()[:12]}"
    cost_key = f"{COST_PREFIX}plus|{res.folder}|{sorted(plus_args.items())}"
    if folder is not None and (folder / "info.json").is_file():
        with np.load(folder / "weights.npz") as z:
            w = z["weights"]
        info = json.loads((folder / "info.json").read_text())["info"]
        log.info("dr4sr+: sample weights for %s read back from %s", target, folder)
        ctx._memo[cost_key] = {"seconds": float(info["bilevel_seconds"]), "cached": True}
        return _weighted(res, w, {**info, "weights_cached": True})
    bcfg = BilevelConfig(epochs=bilevel_epochs, warmup_epochs=warmup_epochs, interval=interval, end_to_end=end_to_end,
                         tau_init=tau_init,
                         train=TrainConfig(batch_size=256, lr=1e-3, loss="bce", n_negatives=1, patience=None,
                                           seed=ctx.seed, max_len=ctx.max_len))
    torch.manual_seed(ctx.seed)
    net = build_model(target, n_items=res.train_set.data.store.n_items, max_len=ctx.max_len)
    fixed = res.sample_segment == 1
    t0 = time.perf_counter()
    fit = train_bilevel(net, res.train_set, train_set, fixed, bcfg)
    w = sample_weights(fit, res.train_set, fixed, bcfg)
    info = {"bilevel_seconds": time.perf_counter() - t0, "target": target, "bilevel_history": fit.history,
            "mean_weight": float(w[~fixed].mean()) if (~fixed).any() else 1.0,
            "weight_histogram": weight_histogram(w[~fixed])}
    ctx._memo[cost_key] = {"seconds": info["bilevel_seconds"], "cached": False}
    if folder is not None:
        save_npz(folder / "weights.npz", weights=w)
        write_json(folder / "info.json", {"args": plus_args, "info": info})  # last: marks it complete
    return _weighted(res, w, {**info, "weights_cached": False})


def _weighted(res: Regenerated, w: np.ndarray, info: dict[str, Any]) -> Transformed:
    """The regenerated set with DR4SR+'s weights ``w``; report extras = regeneration + personalizer info."""
    out = TrainingSet(res.train_set.data, w, res.train_set.provenance)
    return Transformed(out, kept=None, scores=None, extra={**_public(res.info), **info})


__all__ = ["Regenerated", "SEGMENTS", "dr4sr", "dr4sr_plus", "regenerate_dataset"]

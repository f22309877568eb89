"""The ``recsift`` command line (typer). Library errors print one message and exit 2."""
from __future__ import annotations

import functools
import inspect
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, RecsiftError
from .utils.params import parse_params

app = typer.Typer(help="recsift: which interactions matter, and how little data can my models be trained on?",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
datasets_app = typer.Typer(help="List and inspect datasets.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

out = Console(width=max(Console().width, 110))
err = Console(stderr=True)

DataDir = Annotated[Optional[Path], typer.Option("--data-dir", help="Dataset root (default: $RECSIFT_DATA_DIR, then the cache dir).")]
Format = Annotated[Optional[str], typer.Option("--format", help="File format: seqlines | pairs | atomic | csv | hdf5 (auto when omitted).")]
UserCol = Annotated[Optional[str], typer.Option(help="csv: user/session column.")]
ItemCol = Annotated[Optional[str], typer.Option(help="csv: item column.")]
TimeCol = Annotated[Optional[str], typer.Option(help="csv: time column (numbers or dates).")]
RatingCol = Annotated[Optional[str], typer.Option(help="csv: rating column.")]
Sep = Annotated[Optional[str], typer.Option(help="csv: separator (sniffed when omitted).")]


def _option_group(name: str, options: dict[str, tuple[Any, Any]], build: Callable[..., Any]):
    """Decorator for options several commands share: the command declares one parameter ``name``
    where ``options`` (name -> (annotation, default)) go in its option list, and receives
    ``build(**their values)`` there."""
    extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=d, annotation=a)
             for n, (a, d) in options.items()]

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        params = []
        for p in sig.parameters.values():
            params += extra if p.name == name else [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)]

        @functools.wraps(fn)
        def command(**kwargs: Any) -> Any:
            return fn(**{name: build(**{n: kwargs.pop(n) for n in options})}, **kwargs)

        command.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
        return command

    return deco


def _file_opts(**opts: Optional[str]) -> dict:
    """Loader options for a dataset given as a file (ignored for registered names when unset)."""
    return {k: v for k, v in opts.items() if v is not None}


#: --format, --user-col, ... for a dataset given as a file; the command gets them as ``file_opts``
file_options = _option_group("file_opts", {"format": (Format, None), "user_col": (UserCol, None),
                                           "item_col": (ItemCol, None), "time_col": (TimeCol, None),
                                           "rating_col": (RatingCol, None), "sep": (Sep, None)}, _file_opts)


@datasets_app.command("list")
def datasets_list(
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the registered datasets and whether their files are found."""
    from .data.registry import DATASETS, dataset_folder

    rows = []
    for name, spec in sorted(DATASETS.items()):
        try:
            where = str(dataset_folder(name, data_dir)) if spec.files else "built in"
        except RecsiftError:
            where = None
        rows.append({"name": name, "kind": spec.kind, "files": list(spec.files), "found": where,
                     "description": spec.description})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    t = Table("name", "kind", "found", "description")
    for r in rows:
        t.add_row(r["name"], r["kind"], r["found"] or "[red]missing[/red]", r["description"])
    out.print(t)


@datasets_app.command("info")
@file_options
def datasets_info(
    name_or_path: Annotated[str, typer.Argument(help="A registered dataset name or a path to an interaction file.")],
    file_opts: dict = None,  # type: ignore[assignment]  # from @file_options
    split: Annotated[Optional[str], typer.Option(help="loo | ratio | sessions (default: the dataset's protocol).")] = None,
    no_split: Annotated[bool, typer.Option("--no-split", help="Only raw counts.")] = False,
    data_dir: DataDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Counts of a dataset: raw (users, items, interactions) and after its split."""
    from .data import dataset_info

    info = dataset_info(name_or_path, split=split, with_split=not no_split, data_dir=data_dir,
                        **file_opts)
    if as_json:
        print(json.dumps(info))
        return
    t = Table("field", "value", title=info["name"])
    for k, v in info.items():
        if k != "split":
            t.add_row(k, f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v))
    for k, v in info.get("split", {}).items():
        t.add_row(f"split.{k}", f"{v:,}" if isinstance(v, int) else str(v))
    out.print(t)


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Runs folder: data, cached steps, results.csv, report.html.")] = Path("runs/demo"),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data and the first grid seed.")] = 0,
    users: Annotated[int, typer.Option(help="Synthetic users (sessions).")] = 1000,
    items: Annotated[int, typer.Option(help="Synthetic items.")] = 300,
    budget: Annotated[str, typer.Option(help="Comma-separated kept fractions in (0, 1] or counts of training samples.")] = "0.3,0.6",
    curators: Annotated[str, typer.Option(help="Comma-separated, from: random, el2n (top-k by EL2N), d2 (D2 over EL2N), moe (MoE over two small experts, SASRec and NARM).")] = "random,el2n,d2,moe",
    models: Annotated[str, typer.Option(help="Comma-separated models retrained on every curated set.")] = "pop,gru4rec",
    seeds: Annotated[int, typer.Option(help="Number of seeds (curation and retraining); two or more give error bars.")] = 2,
    epochs: Annotated[int, typer.Option(help="Maximum retraining epochs (early stopping on valid R@20).")] = 4,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Offline pipeline on built-in synthetic data: score, prune with several curators, retrain, write the HTML report."""
    from .experiment.demo import run_demo
    from .report import build_report

    def names(s: str) -> tuple[str, ...]:
        return tuple(x.strip() for x in s.split(",") if x.strip())

    logging.getLogger("recsift.experiment").setLevel(logging.INFO)
    res = run_demo(out_dir, seed=seed, n_users=users, n_items=items, budgets=names(budget), curators=names(curators),
                   models=names(models), n_seeds=seeds, epochs=epochs)
    res["report"] = str(build_report(out_dir))
    if as_json:
        print(json.dumps(res))
        return
    f = res["facts"]
    out.print(f"[bold]synthetic[/bold]: {f['n_users']:,} sessions, {f['n_items']:,} items, {f['train_samples']:,} training "
              f"samples ({f['noisy_users']} planted noisy sessions, {_pct(f['noisy_share_full'])} of the samples); "
              f"leave-one-out, full ranking; seeds {', '.join(map(str, f['seeds']))}")
    t = Table("curator", "budget", "model", "kept", "R@20", "MRR@20", "R@20 retained", "noisy share of kept",
              title="test accuracy per curated training set (mean over seeds)")
    for r in res["rows"]:
        t.add_row(r["curator"], r["budget"], r["model"], _pct(r["fraction_kept"], 0), f"{r['recall@20']:.4f}",
                  f"{r['mrr@20']:.4f}", _pct(r["retained"]), _pct(r["noisy_share"]))
    out.print(t)
    out.print(f"results: {res['results']}  ({res['steps']} steps: {res['ran']} ran, {res['cached']} cached; "
              f"{res['seconds_total']:.1f} s, peak RSS {res['peak_rss_mb']:.0f} MB)")
    out.print(f"report: {res['report']}")


def _pct(v: Optional[float], digits: int = 1) -> str:
    return "–" if v is None else f"{100 * v:.{digits}f}%"


@app.command("report")
def report_cmd(
    runs_dir: Annotated[Path, typer.Argument(help="A runs folder written by `recsift run` or `recsift demo`.")],
    out_file: Annotated[Optional[Path], typer.Option("--out", help="HTML file to write (default: RUNS_DIR/report.html); PNGs go to <stem>-figures/ beside it.")] = None,
) -> None:
    """Write the HTML report of a runs folder (tables, curves, explanation views) and print its path."""
    from .report import build_report

    print(build_report(runs_dir, out_file))


@app.command()
@file_options
def train(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Registered dataset name or a file path.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Model name (see `recsift models`).")],
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of initialisation, shuffling and sampling.")] = 2020,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Write result.json and the model checkpoint here.")] = None,
    layout: Annotated[str, typer.Option(help="auto | prefix | all-prefix (sequential models).")] = "auto",
    pack: Annotated[Optional[bool], typer.Option("--pack/--no-pack", help="all-prefix: put several short windows in one row (default: on for models that can, e.g. SASRec).")] = None,
    batch_size: Annotated[int, typer.Option(help="Training targets per step.")] = 2048,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    patience: Annotated[int, typer.Option(help="Early-stopping patience in epochs (0 = never stop early).")] = 10,
    valid_metric: Annotated[str, typer.Option(help="Early-stopping metric.")] = "ndcg@10",
    loss: Annotated[Optional[str], typer.Option(help="ce | bpr | bce (default: the model's).")] = None,
    max_len: Annotated[int, typer.Option(help="Longest input sequence.")] = 50,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda.")] = "auto",
    split: Annotated[Optional[str], typer.Option(help="loo | ratio | sessions (default: the dataset's protocol).")] = None,
    mask_history: Annotated[Optional[bool], typer.Option("--mask-history/--no-mask-history", help="Mask input items at evaluation (default: the protocol's).")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Model hyper-parameter key=value (repeatable).")] = None,
    train_set: Annotated[Optional[Path], typer.Option("--train-set", help="A folder written by `recsift curate`: train on its kept samples.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option("--checkpoint", help="Save the run's state to this file after every epoch; the same command run again after an interruption continues from it (removed when training ends).")] = None,
    data_dir: DataDir = None,
    file_opts: dict = None,  # type: ignore[assignment]  # from @file_options
    progress: Annotated[bool, typer.Option(help="Log each epoch.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train a model on a dataset's training split (or a curated subset); report valid/test metrics, time and memory."""
    from .data import load_split
    from .models import get_model_class
    from .train import TrainConfig, train_model

    get_model_class(model)  # unknown names fail before any data is read
    params = parse_params(param)
    cfg = TrainConfig.make(epochs=epochs, seed=seed, layout=layout, pack=pack, batch_size=batch_size, lr=lr,
                           patience=patience or None, valid_metric=valid_metric, loss=loss, max_len=max_len,
                           device=device, mask_history=mask_history, progress=progress)
    if progress:
        logging.getLogger("recsift").setLevel(logging.INFO)
    sd = load_split(dataset, split=split, data_dir=data_dir, **file_opts)
    curated, cmeta = None, {}
    if train_set is not None:
        from .curators import load_curated

        curated, cmeta = load_curated(train_set, sd)
    res = train_model(sd, model, cfg, model_params=params, train_set=curated, checkpoint=checkpoint)
    summary = {"dataset": sd.name, "protocol": sd.protocol, **res.to_dict()}
    if curated is not None:
        summary["train_set"] = {"folder": str(train_set), "method": cmeta.get("method"), "budget": cmeta.get("budget"),
                                "kept_samples": len(curated), "n_samples": cmeta.get("n_samples")}
    if out_dir is not None:
        from .utils.io import atomic_path, write_json

        write_json(out_dir / "result.json", summary)
        import torch

        if isinstance(res.model, torch.nn.Module):
            with atomic_path(out_dir / f"{model}-seed{seed}-epoch{res.best_epoch}.pt") as tmp:
                torch.save({"model": model, "params": params, "config": cfg.model_dump(), "n_items": sd.n_items,
                            "n_users": sd.n_users, "state_dict": res.model.state_dict()}, tmp)
    if as_json:
        print(json.dumps(summary))
        return
    t = Table("metric", "valid (best epoch)", "test", title=f"{model} on {sd.name} ({res.layout} layout, {res.device})")
    for k in res.test:
        t.add_row(k, f"{res.valid.get(k, float('nan')):.4f}", f"{res.test[k]:.4f}")
    out.print(t)
    out.print(f"best epoch {res.best_epoch} of {len(res.history)}; {res.train_seconds_per_epoch:.2f} s/epoch; "
              f"peak RSS {res.peak_rss_mb:.0f} MB")


def _context(dataset: str, split: Optional[str], data_dir: Optional[Path], probe: _ProbeOpts, unit: str = "sample",
             coverage: Optional[bool] = None, cache_dir: Optional[Path] = None, budget_in: str = "units",
             file_opts: Optional[dict] = None):
    """Load the split and build the curation context (probe model and its training config)."""
    from .curators import CurationContext
    from .data import load_split
    from .models import get_model_class
    from .train import TrainConfig

    get_model_class(probe.model)
    cfg = TrainConfig.make(epochs=probe.epochs, lr=probe.lr, batch_size=probe.batch_size, patience=None, seed=probe.seed)
    sd = load_split(dataset, split=split, data_dir=data_dir, **(file_opts or {}))
    return sd, CurationContext(split=sd, seed=probe.seed, unit=unit, coverage=coverage, probe=probe.model,
                               probe_config=cfg, cache_dir=cache_dir, budget_in=budget_in)


Probe = Annotated[str, typer.Option("--model", "-m", help="Probe model trained to record dynamics (see `recsift models`).")]
ProbeEpochs = Annotated[int, typer.Option("--epochs", help="Probe training epochs (no early stopping: dynamics need them all).")]
ProbeLr = Annotated[float, typer.Option("--lr", help="Probe Adam learning rate.")]
ProbeBatch = Annotated[int, typer.Option("--batch-size", help="Probe training targets per step.")]
SplitOpt = Annotated[Optional[str], typer.Option(help="loo | ratio | sessions (default: the dataset's protocol).")]
Seed = Annotated[int, typer.Option(help="Seed of the probe model and of random choices.")]


@dataclass(frozen=True)
class _ProbeOpts:
    model: str
    epochs: int
    lr: float
    batch_size: int
    seed: int


#: --model, --epochs, --lr, --batch-size, --seed of the probe model; the command gets them as ``probe``
probe_options = _option_group("probe", {"model": (Probe, "gru4rec"), "epochs": (ProbeEpochs, 10), "lr": (ProbeLr, 1e-3),
                                        "batch_size": (ProbeBatch, 2048), "seed": (Seed, 0)}, _ProbeOpts)


@app.command()
@probe_options
@file_options
def score(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Registered dataset name or a file path.")],
    score_name: Annotated[str, typer.Option("--score", "-s", help="Score name, comma-separated names, or 'all' (see `recsift methods`).")],
    out_file: Annotated[Path, typer.Option("--out", help="Output .npz (one row per training sample); a .json summary is written beside it.")],
    probe: _ProbeOpts = None,  # type: ignore[assignment]  # from @probe_options
    split: SplitOpt = None,
    data_dir: DataDir = None,
    file_opts: dict = None,  # type: ignore[assignment]  # from @file_options
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Train a probe model recording training dynamics; write per-sample data-importance scores."""
    from .scoring import SCORES, get_score

    names = sorted(SCORES) if score_name == "all" else [n.strip() for n in score_name.split(",") if n.strip()]
    specs = [get_score(n) for n in names]  # unknown names fail before any work
    if out_file.exists() and out_file.is_dir():
        from .errors import DataFormatError

        raise DataFormatError(f"--out {out_file} is a folder; give a file name such as scores.npz")
    sd, ctx = _context(dataset, split, data_dir, probe, file_opts=file_opts)
    from .scoring import compute_score
    from .utils.io import save_npz, write_json

    full = sd.training_set("sequence" if _is_sequential(probe.model) else "matrix")
    inputs = ctx.score_inputs(full, embeddings=any(sp.needs == "embeddings" for sp in specs))
    cols = {f"score_{n}": compute_score(n, inputs) for n in names}
    d = full.data
    ids = {"sample_id": d.sample_id, "user": d.user, "target": d.targets} if hasattr(d, "sample_id") else \
        dict(zip(("user", "item"), d.coo_pairs()))
    out_file = out_file if out_file.suffix == ".npz" else out_file.with_suffix(out_file.suffix + ".npz")
    save_npz(out_file, **ids, **cols)
    summary = {"dataset": sd.name, "protocol": sd.protocol, "n_samples": len(full), "file": str(out_file),
               "scores": {n: {"hard": get_score(n).hard, "mean": float(cols[f"score_{n}"].mean()),
                              "std": float(cols[f"score_{n}"].std())} for n in names},
               "probe": inputs.extra.get("probe", {})}
    write_json(out_file.with_suffix(".json"), summary)
    if as_json:
        print(json.dumps(summary, default=str))
        return
    t = Table("score", "hard end", "mean", "std", title=f"{len(full):,} samples of {sd.name}, probe {probe.model}")
    for n, v in summary["scores"].items():
        t.add_row(n, v["hard"], f"{v['mean']:.4g}", f"{v['std']:.4g}")
    out.print(t)
    out.print(f"scores: {out_file}")


def _is_sequential(model: str) -> bool:
    from .models import get_model_class
    from .models.base import CFRecommender

    return not issubclass(get_model_class(model), CFRecommender)


@app.command()
@probe_options
@file_options
def curate(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Registered dataset name or a file path.")],
    method: Annotated[str, typer.Option("--method", help="Curator (see `recsift methods`: random, ccs, d2, moe, distill_cf, ...) or a score name for top-k by it.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for samples.npz + curation.json (read by `recsift train --train-set`).")],
    budget: Annotated[Optional[str], typer.Option(help="Kept fraction in (0, 1] or a count of selection units (selecting curators need one).")] = None,
    unit: Annotated[str, typer.Option(help="Selection unit: sample (prefix sample) or user (whole session/user).")] = "sample",
    budget_in: Annotated[str, typer.Option(help="What a budget counts: units (of --unit) or targets (training targets kept, in whole units).")] = "units",
    coverage: Annotated[Optional[bool], typer.Option("--coverage/--no-coverage", help="Keep a set of units covering every training item first, inside the budget (default: the method's; on for moe).")] = None,
    param: Annotated[Optional[list[str]], typer.Option("--param", help="Curator parameter key=value, e.g. score=forgetting, keep=easy, beta=0.1 (repeatable).")] = None,
    probe: _ProbeOpts = None,  # type: ignore[assignment]  # from @probe_options
    split: SplitOpt = None,
    cache_dir: Annotated[Optional[Path], typer.Option("--cache-dir", help="Reuse probe dynamics, MoE experts and DR4SR regenerated sets across runs from this folder.")] = None,
    data_dir: DataDir = None,
    file_opts: dict = None,  # type: ignore[assignment]  # from @file_options
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Select a subset of the training data with a curator; write it for `recsift train --train-set`."""
    from .curators import curate as run_curate, save_curation
    from .curators.base import CURATORS, check_params, resolve_method
    from .curators.store import check_out_dir
    from .data import Budget

    check_out_dir(out_dir)  # a file or another folder fails before any work
    params = parse_params(param)
    name, full_params = resolve_method(method, params)  # unknown methods and parameters fail before any work
    check_params(name, CURATORS[name], full_params)
    if budget is None and not getattr(CURATORS[name], "transform", False):
        raise ConfigError(f"curator {name!r} needs --budget (a kept fraction in (0, 1] or a count of selection units)")
    b = None if budget is None else Budget.parse(budget)
    sd, ctx = _context(dataset, split, data_dir, probe, unit, coverage, cache_dir, budget_in, file_opts)
    # the curator's own data kind (distill_cf: a matrix) wins over the probe model's
    kind = getattr(CURATORS[name], "kind", None) or ("sequence" if _is_sequential(probe.model) else "matrix")
    full = sd.training_set(kind)
    kept, report = run_curate(full, method, b, ctx, **params)
    save_curation(out_dir, full, report, dataset=sd.name, protocol=sd.protocol, curated=kept)
    summary = {"dataset": sd.name, "out": str(out_dir), **report.summary()}
    if as_json:
        print(json.dumps(summary, default=str))
        return
    t = Table("field", "value", title=f"{report.method} on {sd.name}")
    for k in ("budget", "unit", "n_units", "n_samples", "kept_samples", "score", "coverage_units", "select_seconds"):
        t.add_row(k, str(summary.get(k)))
    for r, c in summary["reasons"].items():
        t.add_row(r, f"{c:,}")
    out.print(t)
    out.print(f"curated set: {out_dir}  (train on it: recsift train -d {dataset} -m MODEL --train-set {out_dir})")


@app.command("methods")
def methods_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the curation methods and the data-importance scores."""
    from .curators import CURATORS, list_curators
    from .scoring import SCORES

    list_curators()  # loads the curator plugins (disclosure, regeneration)

    rows = {"curators": {n: " ".join((f.__doc__ or "").strip().split("\n\n")[0].split()) for n, f in sorted(CURATORS.items())},
            "scores": {n: {"needs": s.needs, "hard": s.hard, "doc": s.doc} for n, s in sorted(SCORES.items())}}
    if as_json:
        print(json.dumps(rows))
        return
    t = Table("curator", "what it does")
    for n, d in rows["curators"].items():
        t.add_row(n, d)
    out.print(t)
    t = Table("score", "needs", "hard end", "definition")
    for n, d in rows["scores"].items():
        t.add_row(n, d["needs"], d["hard"], d["doc"])
    out.print(t)


@app.command()
def run(
    config: Annotated[Path, typer.Argument(help="Experiment config, YAML or JSON (see examples/synthetic_small.yaml).")],
    runs_dir: Annotated[Optional[Path], typer.Option("--runs-dir", help="Where steps and results.csv go (overrides the config).")] = None,
    executor: Annotated[Optional[str], typer.Option("--executor", help="local | ray (overrides the config).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Local executor: worker processes (1 = sequential).")] = None,
    ray_address: Annotated[Optional[str], typer.Option("--ray-address", help="Ray cluster address (default: start Ray here).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the expanded grid and what is cached; run nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run an experiment grid: curate x budget x retrain x seed, every step cached; write results.csv."""
    from .experiment import ExperimentConfig, describe_plan, plan_experiment, run_experiment

    cfg = ExperimentConfig.load(config).with_overrides(runs_dir=runs_dir, executor=executor, workers=workers,
                                                       ray_address=ray_address)
    if dry_run:
        plan = plan_experiment(cfg)
        rows = describe_plan(plan)
        n_cached = sum(r["cached"] for r in rows)
        if as_json:
            print(json.dumps({"steps": rows, "rows": len(plan.cells), "cached": n_cached}))
            return
        t = Table("kind", "step", "key", "status", title=f"{cfg.name}: {len(rows)} steps for {len(plan.cells)} table rows")
        for r in rows:
            t.add_row(r["kind"], r["step"], r["key"], "cached" if r["cached"] else "to run")
        out.print(t)
        out.print(f"{n_cached} cached, {len(rows) - n_cached} to run; results would go to "
                  f"{plan.experiment.runs_dir / 'results.csv'}")
        return
    logging.getLogger("recsift.experiment").setLevel(logging.INFO)
    res = run_experiment(cfg)
    if as_json:
        print(json.dumps({"table": str(res.table_path), "rows": len(res.table), "steps": res.n_steps,
                          "ran": res.n_ran, "cached": res.n_cached, "seconds": res.seconds}))
        return
    head, df = res.headline, res.table
    g = df.groupby(["dataset", "curator", "budget", "model"], sort=False).agg(
        kept=("fraction_kept", "mean"), metric=(head, "mean"), retained=("retained", "mean"), seeds=("seed", "count"))
    t = Table("dataset", "curator", "budget", "model", "kept", head, "retained", "seeds",
              title=f"{cfg.name}: mean over seeds")
    for (d, c, b, m), r in g.iterrows():
        t.add_row(d, c, b, m, f"{r['kept']:.2f}", f"{r['metric']:.4f}", f"{100 * r['retained']:.1f}%", str(int(r["seeds"])))
    out.print(t)
    out.print(f"results: {res.table_path}  ({len(df)} rows; {res.n_ran} steps ran, {res.n_cached} cached; "
              f"{res.seconds:.1f} s)")


@app.command("models")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the registered models with their default hyper-parameters."""
    from .models import MODELS, list_models

    list_models()  # loads the model plugins (infae)
    rows = []
    for name, cls in sorted(MODELS.items()):
        hp = cls.hparams() if hasattr(cls, "hparams") else {}
        rows.append({"name": name, "class": cls.__name__, "kind": _model_kind(cls), "paper": getattr(cls, "paper", ""),
                     "params": {k: v for k, v in hp.items() if isinstance(v, (int, float, str, bool, tuple, list))}})
    if as_json:
        print(json.dumps(rows, default=list))
        return
    t = Table("name", "kind", "paper", "defaults")
    for r in rows:
        t.add_row(r["name"], r["kind"], r["paper"], ", ".join(f"{k}={v}" for k, v in r["params"].items()))
    out.print(t)


def _model_kind(cls: type) -> str:
    from .models.base import CFRecommender, SequentialRecommender

    if issubclass(cls, SequentialRecommender):
        return "sequential (causal)" if cls.causal else "sequential"
    return "cf" if issubclass(cls, CFRecommender) else "baseline"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: one clear message and exit code 2 for any user error."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(args=argv, prog_name="recsift")  # usage errors: typer prints them and exits 2
    except RecsiftError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()

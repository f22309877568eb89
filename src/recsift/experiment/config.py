"""The experiment config: what to curate, how much to keep, what to retrain, with which seeds.

A config is YAML or JSON, checked in two passes before any work starts:

1. its shape, by pydantic (unknown keys are an error naming the key and a close match);
2. its names and values, by `resolve` (curators, models, metrics, budgets, training overrides,
   dataset files, the Ray extra), each with the error type the rest of recsift uses.

`resolve` returns a `ResolvedExperiment`: the same grid in the library's own types, which is
all the runner needs. Relative paths (dataset files, ``data_dir``, ``runs_dir``) are relative
to the current working directory, as on the command line.

Example
-------
>>> cfg = ExperimentConfig.from_dict({"datasets": ["synthetic"], "curators": ["random"],
...                                   "budgets": [0.5], "models": ["pop"]})
>>> res = resolve(cfg)
>>> [str(b) for b in res.budgets], res.headline
(['0.5'], 'recall@20')
"""
from __future__ import annotations

import difflib
import importlib.util
import inspect
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError, DatasetNotFoundError

#: training options the grid sets itself (so an override would be silently ignored)
GRID_OWNED = {"seed": "seeds come from the top-level `seeds:` list",
              "metrics": "metrics come from the top-level `metrics:` list"}
#: probe defaults, as in `CurationContext` (no early stopping: dynamics need every epoch)
PROBE_DEFAULTS: dict[str, Any] = {"epochs": 10, "patience": None, "lr": 1e-3}
#: curators that train no probe model (their cache key ignores the probe settings)
NO_PROBE = frozenset({"random"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetEntry(_Strict):
    """One dataset: a registered name (``recsift datasets list``) or a path to an interaction file."""

    name: str = Field(description="registered dataset name or file path")
    split: str | None = Field(None, description="loo | ratio | sessions; None = the dataset's own protocol")
    label: str | None = Field(None, description="name in the results table (default: the dataset's name)")


class CuratorEntry(_Strict):
    """One curator: a method (``recsift methods``; a score name means top-k by that score) and its parameters."""

    name: str = Field(description="curation method or score name")
    params: dict[str, Any] = Field(default_factory=dict, description="the curator's keyword parameters")
    unit: Literal["sample", "user"] = Field("sample", description="selection unit: prefix sample or whole user/session")
    coverage: bool | None = Field(None, description="keep an item-coverage set first; None = the curator's default")
    budget_in: Literal["units", "targets"] = Field(
        "units", description="what a budget counts: selection units, or training targets kept (in whole units)")
    label: str | None = Field(None, description="name in the results table (default: name and params)")


class ModelEntry(_Strict):
    """One retrained model and its hyper-parameters (``recsift models``)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class ProbeEntry(_Strict):
    """The probe model that scored curators train to record dynamics (MoE: the base of its experts' config)."""

    model: str = "gru4rec"
    params: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides for the probe")


def _shorthand(v: Any) -> Any:
    """``- gru4rec`` means ``- {name: gru4rec}`` in the datasets, curators and models lists."""
    if isinstance(v, list):
        return [{"name": x} if isinstance(x, str) else x for x in v]
    return v


class ExperimentConfig(_Strict):
    """A grid: datasets x curators x budgets (+ full data) x models x seeds."""

    name: str = Field("experiment", description="a title for logs and the report")
    datasets: list[DatasetEntry] = Field(min_length=1)
    data_dir: Path | None = Field(None, description="root of the registered datasets (else $RECSIFT_DATA_DIR)")
    curators: list[CuratorEntry] = Field(min_length=1)
    budgets: list[float | int | str] = Field(min_length=1, description="fractions in (0, 1] or counts of units; "
                                             "full data (1.0) is always run as the reference")
    models: list[ModelEntry] = Field(min_length=1, description="models retrained on every curated set")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    metrics: list[str] = Field(default_factory=lambda: ["recall@20", "mrr@20"], min_length=1)
    headline: str | None = Field(None, description="metric of the 'retained' column (default: the first metric)")
    train: dict[str, Any] = Field(default_factory=dict, description="TrainConfig overrides for retraining")
    probe: ProbeEntry = Field(default_factory=ProbeEntry)
    runs_dir: Path = Field(Path("runs/experiment"), description="step folders and results.csv go here")
    executor: Literal["local", "ray"] = "local"
    workers: int = Field(1, ge=1, description="local executor: processes (1 = sequential, in this process)")
    ray_address: str | None = Field(None, description="ray executor: cluster address (None = start Ray locally)")

    @field_validator("datasets", "curators", "models", mode="before")
    @classmethod
    def _names_alone(cls, v: Any) -> Any:
        return _shorthand(v)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ExperimentConfig:
        """Validate ``data``; any problem is one `ConfigError` naming the key (and a close match)."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the config must be a mapping of keys (datasets, curators, budgets, ...), "
                              f"not {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(_explain(e, source)) from None

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ExperimentConfig:
        """Read a ``.yaml``/``.yml`` or ``.json`` config file."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; give the path of an experiment YAML or JSON file")
        text = path.read_text()
        try:
            if path.suffix.lower() == ".json":
                data = json.loads(text)
            else:
                import yaml

                data = yaml.safe_load(text)
        except Exception as e:  # yaml.YAMLError / json.JSONDecodeError: both say where
            kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
            raise ConfigError(f"{path}: not valid {kind}: {e}") from None
        return cls.from_dict(data, source=str(path))

    def with_overrides(self, **changes: Any) -> ExperimentConfig:
        """A copy with ``changes`` (None values ignored), validated again."""
        data = self.model_dump()
        data.update({k: v for k, v in changes.items() if v is not None})
        return type(self).from_dict(data, source="config with command-line overrides")


# ---------------------------------------------------------------- pydantic errors -> ConfigError
def _explain(e: ValidationError, source: str) -> str:
    msgs = []
    for err in e.errors():
        loc = err["loc"]
        where = _loc_text(loc)
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(ExperimentConfig, loc[:-1])
            msgs.append(_unknown_key(where, str(loc[-1]), allowed))
        else:
            msgs.append(f"{where}: {err['msg']}")
    return f"{source}: " + "; ".join(msgs)


def _unknown_key(where: str, key: str, allowed: list[str], what: str = "keys there") -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown key {where!r}.{hint} Allowed {what}: {', '.join(sorted(allowed)) or 'none'}"


def _loc_text(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found by following ``loc`` from ``model``."""
    ann: Any = model
    for part in loc:
        if isinstance(part, int):
            args = get_args(ann)
            ann = args[0] if args else ann
        elif isinstance(ann, type) and issubclass(ann, BaseModel) and part in ann.model_fields:
            ann = ann.model_fields[part].annotation
        ann = _strip_optional(ann)
    return list(ann.model_fields) if isinstance(ann, type) and issubclass(ann, BaseModel) else []


def _strip_optional(ann: Any) -> Any:
    if get_origin(ann) is Union or type(ann).__name__ == "UnionType":
        args = [a for a in get_args(ann) if a is not type(None)]
        return args[0] if len(args) == 1 else ann
    return ann


# ---------------------------------------------------------------- resolved grid
@dataclass(frozen=True)
class DataRef:
    """Where one dataset comes from: a registered name or an absolute file path, and its split."""

    source: str
    split: str | None
    data_dir: str | None
    label: str | None


@dataclass(frozen=True)
class CuratorRef:
    """One curator, resolved: the registry method and its full parameters."""

    label: str
    method: str
    params: dict[str, Any]
    unit: str
    coverage: bool | None
    budget_in: str = "units"

    @property
    def needs_probe(self) -> bool:
        return self.method not in NO_PROBE


@dataclass(frozen=True)
class ResolvedExperiment:
    """The validated grid in recsift's own types (budgets parsed, names resolved, configs built)."""

    name: str
    datasets: list[DataRef]
    curators: list[CuratorRef]
    budgets: list[Any]  # recsift.data.Budget, full data (1.0) excluded
    models: list[tuple[str, dict[str, Any]]]
    seeds: list[int]
    metrics: list[str]
    headline: str
    train: Any  # TrainConfig (its seed is replaced per grid seed)
    probe_model: str
    probe_params: dict[str, Any]
    probe_train: Any  # TrainConfig
    kind: str  # training-set kind every curation and retrain uses: "sequence" or "matrix"
    runs_dir: Path
    executor: str
    workers: int
    ray_address: str | None


def resolve(cfg: ExperimentConfig) -> ResolvedExperiment:
    """Check every name and value of ``cfg``; raise the first problem, before any work or folder.

    Raises `UnknownNameError` (curator, model, metric, dataset), `BudgetError`, `ConfigError`
    (parameters, training overrides, duplicate labels, missing Ray) or `DatasetNotFoundError`.
    """
    from ..data import Budget

    data_dir = str(cfg.data_dir.resolve()) if cfg.data_dir else None
    datasets = [_dataset(d, data_dir) for d in cfg.datasets]
    curators = [_curator(c) for c in cfg.curators]
    _unique([c.label for c in curators], "curator", "give each a distinct `label:`")
    _unique([_data_label(d) for d in datasets], "dataset", "give each a distinct `label:`")
    budgets = []
    for b in cfg.budgets:
        bud = Budget.parse(b)
        if not (bud.is_fraction and bud.value == 1.0) and str(bud) not in {str(x) for x in budgets}:
            budgets.append(bud)
    metrics = _metrics(cfg.metrics)
    headline = _metrics([cfg.headline])[0] if cfg.headline else metrics[0]
    if headline not in metrics:
        raise ConfigError(f"headline metric {headline!r} is not among metrics {metrics}; add it to `metrics:`")
    models = [(m.name, _model_params(m.name, m.params, "models")) for m in cfg.models]
    _unique([f"{n}{sorted(p.items())}" for n, p in models], "model entry", "remove the repeated entry")
    train = _train_config(cfg.train, "train", {"metrics": tuple(metrics), "valid_metric": headline})
    probe_params = _model_params(cfg.probe.model, cfg.probe.params, "probe")
    probe_train = _train_config(cfg.probe.train, "probe.train", PROBE_DEFAULTS)
    kind = _kind(cfg.probe.model)
    if kind == "any":
        raise ConfigError(f"probe model {cfg.probe.model!r} is not trained by gradient descent and records no training "
                          "dynamics; use a neural model such as gru4rec or sasrec")
    from ..curators import get_curator

    for c in curators:
        need = getattr(get_curator(c.method), "kind", None)
        if need not in (None, kind):
            raise ConfigError(f"curator {c.method!r} works on a {need} training set but the curated sets are {kind}s "
                              f"(probe {cfg.probe.model!r}); set `probe: {{model: "
                              f"{'bpr' if need == 'matrix' else 'gru4rec'}}}` or run it in a separate experiment")
    for name, _ in models:
        k = _kind(name)
        if k not in (kind, "any"):
            raise ConfigError(f"model {name!r} trains on a {k} training set but the curated sets are {kind}s (probe "
                              f"{cfg.probe.model!r}); run it in a separate experiment with a matching probe model")
    if len(set(cfg.seeds)) != len(cfg.seeds) or min(cfg.seeds) < 0:
        raise ConfigError(f"seeds {cfg.seeds}: list each seed once, as an integer >= 0")
    if cfg.runs_dir.exists() and not cfg.runs_dir.is_dir():
        raise ConfigError(f"runs_dir {cfg.runs_dir} is a file; give a folder (it is created if missing)")
    if cfg.executor == "ray" and not _installed("ray"):
        from .executors import RAY_MISSING

        raise ConfigError(RAY_MISSING)
    return ResolvedExperiment(
        name=cfg.name, datasets=datasets, curators=curators, budgets=budgets, models=models, seeds=list(cfg.seeds),
        metrics=metrics, headline=headline, train=train, probe_model=cfg.probe.model, probe_params=probe_params,
        probe_train=probe_train, kind=kind, runs_dir=cfg.runs_dir.resolve(), executor=cfg.executor,
        workers=cfg.workers, ray_address=cfg.ray_address)


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (checked without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _data_label(d: DataRef) -> str:
    return d.label or (Path(d.source).stem if os.sep in d.source or "." in d.source else d.source)


def _unique(labels: list[str], what: str, fix: str) -> None:
    seen = {x for x in labels if labels.count(x) > 1}
    if seen:
        raise ConfigError(f"{what} {sorted(seen)[0]!r} appears twice in the config; {fix}")


def _dataset(d: DatasetEntry, data_dir: str | None) -> DataRef:
    """Resolve a dataset entry to a registered name with its files found, or an existing file."""
    from ..data import DATASETS
    from ..data.registry import dataset_folder
    from ..data.splits import SPLITS
    from ..errors import unknown_name

    if d.split is not None and d.split not in SPLITS:
        raise unknown_name("split", d.split, SPLITS)
    if d.name in DATASETS:
        dataset_folder(d.name, data_dir)  # DatasetNotFoundError names the roots it searched
        return DataRef(d.name, d.split, data_dir, d.label)
    path = Path(d.name)
    if path.is_file():
        return DataRef(str(path.resolve()), d.split, None, d.label)
    if os.sep not in d.name and "." not in d.name:
        raise unknown_name("dataset", d.name, DATASETS)
    raise DatasetNotFoundError(f"dataset file {d.name} not found (looked in {path.resolve().parent}); give an existing "
                               "interaction file (relative paths start at the current folder) or a registered name")


def _curator(c: CuratorEntry) -> CuratorRef:
    from ..curators import CURATORS
    from ..curators.base import check_params, resolve_method

    method, params = resolve_method(c.name, dict(c.params))
    check_params(method, CURATORS[method], params)
    if method == "moe":  # its experts are models: an unknown name fails now, not after hours of training
        from ..models import get_model_class

        for expert in params.get("experts", ()):
            get_model_class(expert)
    label = c.label or (c.name if not c.params else
                        f"{c.name}(" + ",".join(f"{k}={v}" for k, v in sorted(c.params.items())) + ")")
    return CuratorRef(label, method, params, c.unit, c.coverage, c.budget_in)


def _metrics(names: list[str]) -> list[str]:
    from ..evaluate.metrics import parse_metric

    out = [parse_metric(m).key for m in names]
    _unique(out, "metric", "list each metric once")
    return out


def _model_params(name: str, params: dict[str, Any], where: str) -> dict[str, Any]:
    """Unknown models and hyper-parameters fail here, not when the first model is built."""
    from ..models import get_model_class

    cls = get_model_class(name)
    accepted = [p for p in inspect.signature(cls).parameters if p not in ("self", "n_users", "n_items", "max_len")]
    for key in params:
        if key in ("n_users", "n_items", "max_len"):
            raise ConfigError(f"{where}: {name} parameter {key!r} is set from the data "
                              "(for max_len use `train: {max_len: N}`)")
        if key not in accepted:
            raise ConfigError(f"{where}: " + _unknown_key(f"{name}.params.{key}", key, accepted, f"{name} parameters"))
    from ..utils.params import validate_kwargs

    validate_kwargs(f"{where}: model {name!r}", cls, params)  # a wrong type fails now; the values stay as given
    return dict(params)


def _train_config(overrides: dict[str, Any], where: str, defaults: dict[str, Any]) -> Any:
    from ..train import TrainConfig

    for key in overrides:
        if key in GRID_OWNED:
            raise ConfigError(f"{where}.{key} cannot be set: {GRID_OWNED[key]}")
        if key not in TrainConfig.model_fields:
            raise ConfigError(_unknown_key(f"{where}.{key}", key, [k for k in TrainConfig.model_fields
                                                                    if k not in GRID_OWNED]))
    try:
        return TrainConfig.make(**{**defaults, **overrides})
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None


def _kind(model: str) -> str:
    """The training-set kind a model trains on: sequence, matrix, or any (the non-neural baselines)."""
    import torch

    from ..models import get_model_class
    from ..models.base import CFRecommender

    cls = get_model_class(model)
    if not issubclass(cls, torch.nn.Module):
        return "any"
    return "matrix" if issubclass(cls, CFRecommender) else "sequence"

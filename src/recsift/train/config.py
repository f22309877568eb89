"""Training configuration: typed, range-checked, unknown keys rejected (pydantic)."""
from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import ConfigError


class TrainConfig(BaseModel):
    """How a model is trained. Defaults follow RecBole 1.2.1 where it has one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(100, ge=1, description="maximum number of epochs")
    batch_size: int = Field(2048, ge=1, description="training targets (prefix samples / interactions) per step")
    lr: float = Field(1e-3, gt=0, description="Adam learning rate")
    weight_decay: float = Field(0.0, ge=0, description="Adam weight decay")
    loss: Literal["ce", "bpr", "bce"] | None = Field(
        None, description="full-softmax CE, or BPR/BCE on sampled negatives; None = the model's default")
    n_negatives: int = Field(1, ge=1, description="sampled negatives per target for bpr/bce")
    layout: Literal["auto", "prefix", "all-prefix"] = Field(
        "auto", description="auto = all-prefix for causal models, prefix otherwise")
    window_overlap: int = Field(0, ge=0, description="all-prefix: extra context items before each window's first target")
    bucket: bool = Field(False, description="all-prefix: batch windows of similar length together (less padding, but "
                         "biased batches: ml-100k SASRec N@10 at 8 epochs .045 vs .053 unbucketed)")
    pack: bool | None = Field(None, description="all-prefix: pack several short windows into one row (block-diagonal "
                              "causal attention; models with packable=True: SASRec, CORE, dr4sr_gnn); None = on for those models")
    max_len: int = Field(50, ge=1, description="longest input sequence")
    patience: int | None = Field(10, ge=1, description="validations without improvement before stopping (epochs when "
                                     "eval_every = 1, as in RecBole's stopping_step); None = never")
    valid_metric: str = Field("ndcg@10", description="early-stopping metric on the validation cases")
    metrics: tuple[str, ...] = Field(("recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20", "mrr@20"),
                                     description="metrics reported on valid and test")
    eval_every: int = Field(1, ge=1, description="validate every this many epochs")
    mask_history: bool | None = Field(None, description="mask the input history at evaluation; None = the split's protocol")
    seed: int = Field(2020, ge=0, description="seed of initialisation, shuffling and negative sampling")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto = cuda when available")
    eval_batch_size: int | None = Field(None, ge=1, description="evaluation cases per chunk (None = memory-based)")
    progress: bool = Field(False, description="show progress bars")

    #: fields that never change what is trained: runs and caches that differ only in these are the same
    NEUTRAL: ClassVar[frozenset[str]] = frozenset({"progress", "eval_batch_size"})

    def identity(self) -> str:
        """JSON of the config with the `NEUTRAL` fields at their defaults: the part of a probe or
        expert cache key that comes from the config (equal to ``model_dump_json()`` for configs
        that leave them at their defaults, so keys written before this method stay valid)."""
        return self.model_copy(update={f: type(self).model_fields[f].default for f in self.NEUTRAL}).model_dump_json()

    @field_validator("valid_metric")
    @classmethod
    def _metric_has_k(cls, v: str) -> str:
        if "@" not in v:
            raise ValueError(f"valid_metric {v!r} needs a cutoff, e.g. 'ndcg@10'")
        return v.lower()

    @classmethod
    def make(cls, **kwargs) -> TrainConfig:
        """Build from user input, turning validation errors into one `ConfigError`."""
        try:
            return cls(**kwargs)
        except ValidationError as e:
            msgs = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
            raise ConfigError(f"invalid training config: {msgs}") from None

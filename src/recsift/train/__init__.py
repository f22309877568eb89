"""Training: one loop for every model, two sample layouts, streaming training dynamics."""
from .api import TrainResult, train_model, trainer_for
from .config import TrainConfig
from .dynamics import DynamicsRecorder, per_sample_stats
from .outputs import sample_outputs
from .trainer import SequenceTrainer, Trainer, resolve_device

__all__ = ["DynamicsRecorder", "SequenceTrainer", "TrainConfig", "TrainResult", "Trainer", "per_sample_stats",
           "resolve_device", "sample_outputs", "train_model", "trainer_for"]

from ..utils.callable_module import make_callable as _make_callable

_make_callable(__name__, "train")  # recsift.train(ds, "sasrec", ...) is recsift.api.train

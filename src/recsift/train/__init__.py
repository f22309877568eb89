"""Training: one loop for every model, two sample layouts, streaming training dynamics."""
from .api import TrainResult, train_model, trainer_for
from .config import TrainConfig
from .dynamics import DynamicsRecorder
from .trainer import SequenceTrainer, Trainer, resolve_device

__all__ = ["DynamicsRecorder", "SequenceTrainer", "TrainConfig", "TrainResult", "Trainer", "resolve_device",
           "train_model", "trainer_for"]

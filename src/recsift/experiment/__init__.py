"""Experiments: config-driven grids of curate -> retrain steps, cached by content hash, run
locally or on Ray (`run_experiment`); and the offline demo (`recsift.experiment.demo.run_demo`)."""
from .config import ExperimentConfig, ResolvedExperiment, resolve
from .executors import LocalExecutor, RayExecutor, make_executor
from .runner import Plan, RunResult, Step, collect_table, describe_plan, plan_experiment, run_experiment, run_step

#: short name for the experiment config (``Config.load("exp.yaml")``)
Config = ExperimentConfig

__all__ = ["Config", "ExperimentConfig", "LocalExecutor", "Plan", "RayExecutor", "ResolvedExperiment", "RunResult",
           "Step", "collect_table", "describe_plan", "make_executor", "plan_experiment", "resolve", "run_experiment",
           "run_step"]

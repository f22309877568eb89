"""Executors: run a list of steps, each after the steps it needs, here or on a Ray cluster.

An executor calls ``fn(step)`` for every step (``fn`` is a module-level function, so it pickles
by reference) and returns the outcomes in step order. A step has a ``key`` and ``needs``, the
keys of the steps it reads from; a needed key that is not in the list was finished earlier.

- `LocalExecutor`: sequential in this process (``workers=1``), or a pool of spawned processes
  that starts each step as soon as its upstream steps are done.
- `RayExecutor`: the same function as Ray tasks (``num_cpus=1`` each); a retrain task takes
  its curation task's result as an argument, so Ray starts it only after that one finished.
  ``address=None`` starts Ray on this machine; a cluster address (``"auto"``,
  ``"ray://head:10001"``) uses that cluster, whose nodes need recsift installed and the runs
  directory on a shared file system. Ray is the optional extra ``recsift[ray]``.

Example
-------
>>> from types import SimpleNamespace as S
>>> steps = [S(key="a", needs=()), S(key="b", needs=("a",))]
>>> LocalExecutor().run(steps, lambda s: s.key)
['a', 'b']
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ..errors import ConfigError

log = logging.getLogger(__name__)

RAY_MISSING = ("executor 'ray' needs Ray, which is not installed: pip install \"ray>=2.9\" (recsift's 'ray' extra), "
               "or use the local executor")


class StepLike(Protocol):
    key: str
    needs: tuple[str, ...]


class Executor(Protocol):
    def run(self, steps: Sequence[StepLike], fn: Callable[[Any], Any]) -> list[Any]: ...


class LocalExecutor:
    """Steps in this process, in order (``workers=1``), or in ``workers`` spawned processes."""

    def __init__(self, workers: int = 1) -> None:
        if workers < 1:
            raise ConfigError(f"workers={workers}: give at least 1 process")
        self.workers = workers

    def run(self, steps: Sequence[StepLike], fn: Callable[[Any], Any]) -> list[Any]:
        order = _ordered(steps)  # also rejects steps that need each other
        if self.workers == 1 or len(steps) <= 1:
            done = {s.key: fn(s) for s in order}
        else:
            done = self._pool(order, fn)
        return [done[s.key] for s in steps]

    def _pool(self, steps: Sequence[StepLike], fn: Callable[[Any], Any]) -> dict[str, Any]:
        import multiprocessing as mp
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        in_run = {s.key for s in steps}
        pending, running, done = list(steps), {}, {}  # steps come in dependency order
        pool = ProcessPoolExecutor(self.workers, mp_context=mp.get_context("spawn"))
        try:
            while pending or running:
                ready = [s for s in pending if all(d in done or d not in in_run for d in s.needs)]
                for s in ready:
                    pending.remove(s)
                    running[pool.submit(fn, s)] = s
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    done[running.pop(f).key] = f.result()  # a failed step raises here
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown()
        return done


class RayExecutor:
    """Steps as Ray tasks on a cluster (``address``) or on a Ray instance started here."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def run(self, steps: Sequence[StepLike], fn: Callable[[Any], Any]) -> list[Any]:
        ray = import_ray()
        started = False
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False)
            started = True
        try:
            task = ray.remote(num_cpus=1)(_after)
            refs: dict[str, Any] = {}
            for s in _ordered(steps):
                refs[s.key] = task.remote(fn, s, *[refs[d] for d in s.needs if d in refs])
            log.info("submitted %d steps to Ray", len(refs))
            return ray.get([refs[s.key] for s in steps])
        finally:
            if started:
                ray.shutdown()


def _after(fn: Callable[[Any], Any], step: Any, *upstream: Any) -> Any:
    """The Ray task: ``fn(step)``; ``upstream`` are the results it waited for (unused)."""
    return fn(step)


def _ordered(steps: Sequence[StepLike]) -> list[StepLike]:
    """Steps with every needed step before the steps that need it (stable otherwise)."""
    in_run = {s.key for s in steps}
    placed: set[str] = set()
    out: list[StepLike] = []
    rest = list(steps)
    while rest:
        ready = [s for s in rest if all(d in placed or d not in in_run for d in s.needs)]
        if not ready:
            raise ValueError(f"steps {[s.key for s in rest]} need each other; no order runs them")
        for s in ready:
            rest.remove(s)
            placed.add(s.key)
            out.append(s)
    return out


def import_ray() -> Any:
    """Ray, or one clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_MISSING) from None
    return ray


def make_executor(kind: str, *, workers: int = 1, address: str | None = None) -> Executor:
    """The executor named ``kind`` ("local" or "ray")."""
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        import_ray()
        return RayExecutor(address)
    from ..errors import unknown_name

    raise unknown_name("executor", kind, ["local", "ray"])

"""Run independent tasks on a local process pool (default) or on a Ray cluster, with retries.

One entry point, :func:`run_tasks`, used by the data build, embedding and evaluation::

    results = run_tasks(fn, tasks, ParallelOptions(workers=8), on_done=lambda i, r: bar.update())

* ``ParallelOptions(workers=1)`` (and ``ray=None``): every task in this process, in order — the
  single-process reference that parallel runs must reproduce byte for byte.
* ``workers=N`` (default: the core count): a ``spawn`` process pool of N workers. A worker that dies
  (killed, out of memory: ``BrokenProcessPool``) takes the pool down; the tasks without a result are
  resubmitted to a fresh pool, each at most ``retries`` times, then :class:`WorkerLostError`.
* ``ray="auto"`` or ``ray="HOST:PORT"`` / ``"ray://HOST:PORT"``: Ray tasks (``num_cpus=1`` each) on
  the cluster this process is connected to, or connects to; Ray itself retries a task whose worker
  died (``max_retries=retries``). Ray is optional (``pip install 'emo3d[ray]'``).

Tasks must be idempotent (a retried task may have run partly before) and ``fn`` and the tasks
picklable (a module-level function). An exception raised BY a task is not retried: it propagates.
Results come back in task order whatever the completion order; ``on_done(index, result)`` is called
in completion order, in this process (progress bars).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from .errors import InvalidInputError, WorkerLostError
from .options import check_int

__all__ = ["ParallelOptions", "run_tasks", "default_workers"]


def default_workers() -> int:
    """The cores this process may use (``sched_getaffinity``), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class ParallelOptions:
    """``workers``: local processes (None: the core count; 1: in-process); ``ray``: None (local),
    ``"auto"`` or a cluster address; ``retries``: re-runs of a task whose worker died."""
    workers: Optional[int] = None
    ray: Optional[str] = None
    retries: int = 3

    def __post_init__(self):
        if self.workers is not None:
            check_int(self.workers, "--workers", 1)
        if self.ray is not None and (not isinstance(self.ray, str) or not self.ray.strip()):
            raise InvalidInputError(f"--ray takes 'auto' or a cluster address (HOST:PORT, ray://HOST:PORT), "
                                    f"got {self.ray!r}")
        check_int(self.retries, "retries", 0)

    @property
    def n_workers(self) -> int:
        return self.workers or default_workers()

    @property
    def backend(self) -> str:
        """``ray``, ``processes`` or ``inline``."""
        if self.ray is not None:
            return "ray"
        return "inline" if self.n_workers == 1 else "processes"


Callback = Optional[Callable[[int, Any], None]]


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence[Any], options: ParallelOptions = ParallelOptions(),
              *, on_done: Callback = None) -> List[Any]:
    """``[fn(t) for t in tasks]`` on the chosen backend (see the module docstring)."""
    tasks = list(tasks)
    if not tasks:
        return []
    backend = options.backend
    if backend == "ray":
        return _run_ray(fn, tasks, options, on_done)
    if backend == "inline" or len(tasks) == 1:
        out = []
        for i, t in enumerate(tasks):
            out.append(fn(t))
            if on_done is not None:
                on_done(i, out[-1])
        return out
    return _run_processes(fn, tasks, options, on_done)


def _run_processes(fn, tasks: List[Any], options: ParallelOptions, on_done: Callback) -> List[Any]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    results: Dict[int, Any] = {}
    attempts = [0] * len(tasks)
    ctx = mp.get_context("spawn")     # no fork: the parent may hold threads, torch, MediaPipe
    while len(results) < len(tasks):
        todo = [i for i in range(len(tasks)) if i not in results]
        for i in todo:
            attempts[i] += 1
            if attempts[i] > options.retries + 1:
                raise WorkerLostError(f"task {i} lost its worker {attempts[i] - 1} times (retries={options.retries}); "
                                      f"a worker process keeps dying (out of memory? killed?)")
        pool = ProcessPoolExecutor(max_workers=min(options.n_workers, len(todo)), mp_context=ctx)
        broken = False
        try:
            futures = {pool.submit(fn, tasks[i]): i for i in todo}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    i = futures[f]
                    try:
                        r = f.result()
                    except BrokenProcessPool:
                        broken = True
                        continue
                    results[i] = r
                    if on_done is not None:
                        on_done(i, r)
        finally:
            pool.shutdown(wait=not broken, cancel_futures=True)
        # a broken pool: the loop resubmits every task without a result to a fresh pool
    return [results[i] for i in range(len(tasks))]


def _ray_connect(address: str):
    try:
        import ray
    except ImportError:
        raise InvalidInputError("--ray needs Ray: pip install 'emo3d[ray]' (or run without --ray for the local "
                                "process pool)") from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    return ray


def _run_ray(fn, tasks: List[Any], options: ParallelOptions, on_done: Callback) -> List[Any]:
    ray = _ray_connect(options.ray.strip())
    remote = ray.remote(num_cpus=1, max_retries=options.retries, retry_exceptions=False)(fn)
    refs = [remote.remote(t) for t in tasks]
    index = {r: i for i, r in enumerate(refs)}
    results: Dict[int, Any] = {}
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        for ref in done:
            i = index[ref]
            try:
                results[i] = ray.get(ref)
            except ray.exceptions.RayTaskError as e:          # the task raised: not a lost worker
                raise e.as_instanceof_cause() from None
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                    ray.exceptions.ObjectLostError) as e:
                raise WorkerLostError(f"Ray task {i} lost its worker more than {options.retries} times: "
                                      f"{type(e).__name__}") from None
            if on_done is not None:
                on_done(i, results[i])
    return [results[i] for i in range(len(tasks))]

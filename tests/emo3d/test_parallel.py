"""emo3d.parallel: in-process, local process pool and Ray give the same ordered results; a killed
worker's task is retried; a task's own exception propagates."""
import pytest

from emo3d.errors import InvalidInputError, WorkerLostError
from emo3d.parallel import ParallelOptions, default_workers, run_tasks
from support import parallel_tasks as T


def test_inline_and_processes_agree_in_task_order():
    seen = []
    inline = run_tasks(T.square, range(9), ParallelOptions(workers=1), on_done=lambda i, r: seen.append(i))
    assert inline == [i * i for i in range(9)] and seen == list(range(9))
    done = []
    pool = run_tasks(T.square, range(9), ParallelOptions(workers=2), on_done=lambda i, r: done.append((i, r)))
    assert pool == inline and sorted(done) == [(i, i * i) for i in range(9)]
    assert run_tasks(T.square, [], ParallelOptions(workers=2)) == []
    assert ParallelOptions().n_workers == default_workers() >= 1
    assert ParallelOptions(workers=1).backend == "inline" and ParallelOptions(ray="auto").backend == "ray"


def test_killed_worker_is_retried(tmp_path):
    tasks = [(str(tmp_path), i, 4) for i in range(10)]
    out = run_tasks(T.die_once, tasks, ParallelOptions(workers=2, retries=2))
    assert out == [i * i for i in range(10)]          # nothing lost, nothing duplicated
    assert (tmp_path / "died_4").is_file()             # the worker really died once
    with pytest.raises(WorkerLostError, match="retries=1"):
        run_tasks(T.always_die, [0, 1], ParallelOptions(workers=2, retries=1))


def test_task_exceptions_propagate_and_options_validate():
    with pytest.raises(ValueError, match="task three"):
        run_tasks(T.fail_on_three, range(5), ParallelOptions(workers=2))
    with pytest.raises(ValueError, match="task three"):
        run_tasks(T.fail_on_three, range(5), ParallelOptions(workers=1))
    for bad in (dict(workers=0), dict(ray=""), dict(retries=-1)):
        with pytest.raises(InvalidInputError):
            ParallelOptions(**bad)


@pytest.mark.slow
def test_ray_backend_matches_and_retries(local_ray, tmp_path):
    opts = ParallelOptions(ray="auto", retries=2)
    done = []
    assert run_tasks(T.square, range(6), opts, on_done=lambda i, r: done.append(i)) == [i * i for i in range(6)]
    assert sorted(done) == list(range(6))
    tasks = [(str(tmp_path), i, 2) for i in range(5)]
    assert run_tasks(T.die_once, tasks, opts) == [i * i for i in range(5)]
    assert (tmp_path / "died_2").is_file()
    with pytest.raises(ValueError, match="task three"):
        run_tasks(T.fail_on_three, range(5), opts)

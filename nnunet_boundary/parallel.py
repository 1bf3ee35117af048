"""Running independent per-case jobs in this process or in a pool of worker processes, reporting each as it ends."""
import multiprocessing
from typing import Callable, List, Optional, Sequence, TypeVar

Job = TypeVar('Job')
Result = TypeVar('Result')


def map_jobs(function: Callable[[Job], Result], jobs: Sequence[Job], num_processes: int = 1, ordered: bool = True,
             log: Optional[Callable[[str], None]] = None, describe: Callable[[Result], str] = str) -> List[Result]:
    """``function`` applied to each job: here when ``num_processes`` is 1 (or less), else in a pool of that many
    processes (``function`` and the jobs must then pickle: a module-level function). Results come in the jobs' order
    if ``ordered``, else as they finish; after each one, ``log('[i/n] ' + describe(result))``. The first error in a
    job is raised here, and the pool is terminated however this ends (an error, Ctrl-C)."""
    pool = multiprocessing.Pool(num_processes) if num_processes > 1 else None
    results = []
    try:
        mapped = (pool.imap if ordered else pool.imap_unordered)(function, jobs) if pool else map(function, jobs)
        for i, result in enumerate(mapped, 1):
            results.append(result)
            if log:
                log(f'[{i}/{len(jobs)}] {describe(result)}')
    finally:
        if pool:
            pool.terminate()
    return results

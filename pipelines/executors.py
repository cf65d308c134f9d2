"""Where per-scene work runs. The work function does not know: executors are swappable behind
``map_unordered`` (results come back in completion order; the build never depends on that order).

- ``local``: in-process for one worker, else a process pool (spawn start method: no forked threads);
- ``ray``: Ray tasks on a running cluster (``address``) or on a local instance started for the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]: ...


@dataclass(frozen=True)
class LocalExecutor:
    workers: int = 1

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        if self.workers <= 1 or len(items) <= 1:
            yield from map(fn, items)
            return
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn")) as pool:
            for fut in as_completed([pool.submit(fn, x) for x in items]):
                yield fut.result()


@dataclass(frozen=True)
class RayExecutor:
    """Ray tasks, one per item, at most ``max_in_flight`` submitted at a time (bounded memory)."""

    address: str | None = None
    num_cpus: int | None = None
    max_in_flight: int = 256

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[R]:
        try:
            import ray
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("the ray executor needs Ray: pip install 'vlm3r[ray]'") from exc
        started = not ray.is_initialized()
        if started:
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address:
                kwargs["address"] = self.address
            elif self.num_cpus:
                kwargs["num_cpus"] = self.num_cpus
            ray.init(**kwargs)
        try:
            remote = ray.remote(_apply)  # a plain function: Ray refuses partials and callables
            pending, todo = [], list(items)
            while todo or pending:
                while todo and len(pending) < self.max_in_flight:
                    pending.append(remote.remote(fn, todo.pop(0)))
                done, pending = ray.wait(pending, num_returns=1)
                yield ray.get(done[0])
        finally:
            if started:
                ray.shutdown()


def _apply(fn: Callable[[T], R], item: T) -> R:
    return fn(item)


def make_executor(kind: str, workers: int = 1, address: str | None = None) -> Executor:
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(address=address, num_cpus=workers if workers > 1 else None)
    raise ValueError(f"unknown executor {kind!r}; use local or ray")

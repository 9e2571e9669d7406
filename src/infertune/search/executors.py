"""Where candidate jobs run.

`local` runs everything here, one job at a time. `ray` spreads the build and evaluation jobs
(passes, calibration, recovery, accuracy) over a Ray cluster, while latency is measured by
one task at a time on a node that offers the custom resource `infertune_timing` (start such
nodes with `ray start --resources '{"infertune_timing": 1}'`), so measurements never
overlap one another. The search starts no measurement while build jobs are in flight
(`Evaluator.screen_all` builds a whole stage, then probes), so a timing node never times a
candidate while it also builds one. Jobs and measurements of a GPU runtime ask Ray for a GPU. Decisions are taken by the search process alone, from the results in a
fixed order, so both executors decide the same way on the same measurements. With Ray the run
directory must be on storage every node sees (the jobs read and write it).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..measure.rounds import measure
from ..measure.session import SessionFactory
from ..runtimes import RUNTIMES
from .child import run_candidate_job

TIMING_RESOURCE = "infertune_timing"
OnResult = Callable[[int, dict[str, Any]], None]


class LocalExecutor:
    name = "local"

    def run_jobs(self, jobs: Sequence[dict[str, Any]], timeout_s: float,
                 on_result: OnResult | None = None) -> list[dict[str, Any]]:
        """Runs the jobs one by one; `on_result(index, result)` as each one finishes."""
        results = []
        for i, job in enumerate(jobs):
            results.append(run_candidate_job(job, timeout_s))
            if on_result:
                on_result(i, results[-1])
        return results

    def measure(self, factory, **options: Any) -> dict[str, Any]:
        return measure(factory, with_fingerprint=False, **options)

    def close(self) -> None:
        pass

    def describe(self) -> dict[str, Any]:
        return {"executor": "local"}


class RayExecutor:
    """Build/evaluate jobs as Ray tasks (one CPU each); timing as tasks needing the timing
    resource, submitted and awaited one at a time."""

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None):
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'infertune[ray]' "
                              "(or '[all]')") from None
        self.ray = ray
        self.started = not ray.is_initialized()
        if self.started:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a local cluster of this machine, which then is also the timing node
                ray.init(num_cpus=num_cpus, resources={TIMING_RESOURCE: 1},
                         include_dashboard=False, log_to_driver=False)
        if not ray.cluster_resources().get(TIMING_RESOURCE):
            raise ConfigError(f"no Ray node offers the '{TIMING_RESOURCE}' resource: start "
                              f"the timing node with ray start --resources "
                              f"'{{\"{TIMING_RESOURCE}\": 1}}'")
        self._job = ray.remote(num_cpus=1, max_retries=0)(run_candidate_job)
        self._measure = ray.remote(num_cpus=0, resources={TIMING_RESOURCE: 1},
                                   max_retries=0)(_measure_remote)

    def _job_for(self, job: dict[str, Any]):
        return self._job.options(num_gpus=1) if needs_gpu(job.get("runtime")) else self._job

    def run_jobs(self, jobs: Sequence[dict[str, Any]], timeout_s: float,
                 on_result: OnResult | None = None) -> list[dict[str, Any]]:
        """Submits every job at once; `on_result(index, result)` in completion order."""
        refs = [self._job_for(job).remote(job, timeout_s) for job in jobs]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            i = index[done[0]]
            results[i] = self.ray.get(done[0])
            if on_result:
                on_result(i, results[i])
        return results

    def measure(self, factory, **options: Any) -> dict[str, Any]:
        task = self._measure.options(num_gpus=1) if needs_gpu(factory.runtime) else self._measure
        return self.ray.get(task.remote(factory.to_dict(), options))

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()

    def describe(self) -> dict[str, Any]:
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        return {"executor": "ray", "nodes": len(nodes),
                "cpus": self.ray.cluster_resources().get("CPU"),
                "timing_nodes": sum(1 for n in nodes if n.get("Resources", {}).get(TIMING_RESOURCE))}


def needs_gpu(runtime: str | None) -> bool:
    """Whether a job or measurement of `runtime` must run where Ray has a GPU (the runtime's
    own `needs_gpu`; unknown or no runtime: no)."""
    return runtime in RUNTIMES.names() and RUNTIMES.get(runtime).needs_gpu


def _measure_remote(factory: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return measure(SessionFactory.from_dict(factory), with_fingerprint=False, **options)


def make_executor(name: str, address: str | None = None) -> LocalExecutor | RayExecutor:
    if name == "local":
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(address)
    raise ConfigError(f"unknown executor {name!r}; known: local, ray")

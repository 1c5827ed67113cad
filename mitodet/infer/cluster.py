"""Jobs of :mod:`mitodet.infer.jobs` as Ray tasks: ``mitodet detect ... --ray [ADDRESS]``.

Ray schedules them (on the cluster's CPUs, or GPUs with ``--device cuda``), retries tasks of
lost workers, and moves the models (as checkpoint bytes, once) and each slide's tissue mask
through its object store. The driver stays in :func:`mitodet.infer.run.run_inputs`: it plans
the jobs, writes a slide's ``partial.json`` as its regions come back (so a run resumes per
region) and writes every output. Workers read the images and slides themselves, so on a real
cluster the inputs must be at the same path on every node (a shared file system); mitodet must
be installed on the nodes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mitodet.errors import MitodetError
from mitodet.infer.detector import Detector
from mitodet.infer.jobs import Job, JobResult, run_job
from mitodet.infer.tissue import TissueMask

_DETECTORS: dict[str, list[Detector]] = {}  # per worker process: the models of the last spec


def _remote_job(spec: dict, job: Job, tissue: TissueMask | None) -> tuple[str, Any]:
    """Run one job in a Ray worker -> ("ok", JobResult) or ("error", (source, problem))."""
    try:
        key = spec["id"]
        if key not in _DETECTORS:
            _DETECTORS.clear()
            dets = []
            with tempfile.TemporaryDirectory() as tmp:
                for data, name in spec["models"]:
                    path = Path(tmp) / name
                    path.write_bytes(data)
                    dets.append(Detector.from_checkpoint(path, **spec["kwargs"]))
            _DETECTORS[key] = dets
        return "ok", run_job(_DETECTORS[key], job, tissue)
    except MitodetError as err:  # sent back as plain values: an exception's pickling is not guaranteed
        return "error", (err.source, err.problem)
    except (OSError, ValueError) as err:
        return "error", (job.path, f"{type(err).__name__}: {err}")


CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """A ``HOST:PORT`` (or ``ray://HOST:PORT``) that nothing answers on is one line after
    ``timeout`` seconds, not a wait of minutes inside ``ray.init``; ``auto`` is left to Ray."""
    import socket

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as err:
        raise MitodetError(
            address, f"no Ray head answers there within {timeout:g} s ({err.strerror or err}); is the cluster up?"
        ) from None


class RayExecutor:
    """Runs jobs as Ray tasks. ``address``: None starts a local Ray runtime (``num_cpus`` CPUs,
    default all), else joins that cluster ("auto" = the one this machine belongs to,
    "ray://host:10001" = a remote one). ``threads``: CPUs per task (and the network's threads);
    ``gpus``: GPUs per task (1 with ``device="cuda"``)."""

    def __init__(
        self,
        model_paths: list[Path],
        detector_kwargs: dict,
        address: str | None = None,
        num_cpus: int | None = None,
        threads: int = 1,
        gpus: float = 0,
    ):
        try:
            import ray
        except ImportError:
            raise MitodetError("--ray", "Ray is not installed; pip install 'mitodet[ray]'") from None
        self.ray = ray
        self.started = False
        if not ray.is_initialized():
            kw: dict[str, Any] = dict(include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
            try:
                if address:
                    check_reachable(address)
                    ray.init(address=address, **kw)
                else:  # local workers import the mitodet this process runs (a checkout, or installed)
                    here = str(Path(__file__).resolve().parents[2])
                    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
                    ray.init(num_cpus=num_cpus, runtime_env={"env_vars": {"PYTHONPATH": path}}, **kw)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise MitodetError(address or "--ray", f"cannot start or join Ray: {err}".splitlines()[0]) from None
            self.started = True
        models = [(Path(p).read_bytes(), Path(p).name) for p in model_paths]
        h = hashlib.sha256(repr(sorted(detector_kwargs.items())).encode())
        for data, name in models:
            h.update(name.encode() + data)
        kwargs = {**detector_kwargs, "threads": threads}
        self.spec = ray.put({"id": h.hexdigest(), "models": models, "kwargs": kwargs})
        self.task = ray.remote(_remote_job).options(num_cpus=threads, num_gpus=gpus, max_retries=2)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.max_in_flight = max(2, 2 * cpus // max(1, threads))

    def run(self, jobs: Iterable[Job], tissue_of) -> Iterator[tuple[Job, JobResult | None, Exception | None]]:
        ray = self.ray
        masks: dict[str, Any] = {}
        flying: dict[Any, Job] = {}
        todo = iter(jobs)
        more = True
        while more or flying:
            while more and len(flying) < self.max_in_flight:
                job = next(todo, None)
                if job is None:
                    more = False
                    break
                if job.key not in masks:
                    masks[job.key] = ray.put(tissue_of(job))
                ref = self.task.remote(self.spec, dataclasses.replace(job, pixels=None), masks[job.key])
                flying[ref] = job
            if not flying:
                break
            done, _ = ray.wait(list(flying), num_returns=1)
            for ref in done:
                job = flying.pop(ref)
                try:
                    status, value = ray.get(ref)
                except ray.exceptions.RayError as err:
                    yield job, None, MitodetError(job.path, f"Ray task failed: {str(err).strip().splitlines()[-1]}")
                    continue
                if status == "ok":
                    yield job, value, None
                else:
                    yield job, None, MitodetError(*value)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
            self.started = False

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

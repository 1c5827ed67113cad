"""DistributedDataParallel path: 2 CPU processes on the gloo backend."""

import os
import socket

import torch
import torch.multiprocessing as mp

from mitodet.train.config import config_from_dict
from tests.train.conftest import tiny_raw


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker_weights(rank, world, port, raw, run_dir, out):
    """Same as _worker but each rank saves its own live weights."""
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    import torch.distributed as dist

    import mitodet.train.run as run

    captured = {}
    orig = run.BatchSampler

    class Spy(orig):
        def sample(self):
            x, y = super().sample()
            captured.setdefault("first", x[:4].clone())
            return x, y

    run.BatchSampler = Spy
    orig_create = run.create_model

    def create(name, **kw):
        m = orig_create(name, **kw)
        captured["model"] = m
        return m

    run.create_model = create
    try:
        run.train(config_from_dict(raw), run_dir)
    finally:
        run.BatchSampler, run.create_model = orig, orig_create
    # parameters only: BN running stats are per rank (DDP re-broadcasts rank 0's at each forward)
    torch.save(
        {"weights": {k: v.detach() for k, v in captured["model"].named_parameters()}, "first": captured["first"]},
        f"{out}/rank{rank}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


def test_ddp_two_cpu_processes_gloo(small_crops, tmp_path):
    raw = tiny_raw(small_crops, train={"epochs": 1, "steps_per_epoch": 3})
    mp.spawn(_worker_weights, args=(2, _free_port(), raw, str(tmp_path / "run"), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)  # tensors only: no pickled code anywhere
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert not torch.equal(r0["first"], r1["first"])  # each rank draws other batches
    for k, v in r0["weights"].items():  # averaged gradients keep the replicas identical
        assert torch.allclose(v, r1["weights"][k], atol=1e-6), k
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "metrics.csv").is_file()

"""One epoch of training and one validation pass (the split of torchvision's detection references).

``train_one_epoch`` draws ``steps`` batches from a sampler (anything with ``sample()`` ->
``(inputs, target)``, ``loss(logits, target)`` and ``batch``), and takes one SGD step per batch.
``evaluate`` scores fixed validation windows: class-balanced loss, patch F1, AUC.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from mitodet.augment.transforms import center_crop
from mitodet.classify.metrics import auc
from mitodet.train.device import autocast

StepCallback = Callable[[int, int, float, float], None]  # (step done, steps, mean loss, samples/s)
EpochCallback = Callable[[int, int], None]  # (epoch starting, 1-based; epochs of the run)
ValCallback = Callable[[str, int, int], None]  # (what is being validated, done, total)


def logits_center(out: torch.Tensor) -> torch.Tensor:
    """[B,2,h,w] -> [B,2] at the centre cell (1x1 for an rf x rf input)."""
    return out[:, :, out.shape[2] // 2, out.shape[3] // 2]


def train_one_epoch(
    model: torch.nn.Module,
    sampler,
    opt: torch.optim.Optimizer,
    sched,
    device: torch.device,
    steps: int,
    bf16: bool = False,
    world: int = 1,
    log_every: int = 10,
    on_step: StepCallback | None = None,
) -> dict:
    """``steps`` SGD steps -> ``{"train_loss", "patches_per_s", "seconds"}`` (samples = patches or windows)."""
    model.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=device)
    for step in range(steps):
        x, target = sampler.sample()
        with autocast(device, bf16):
            out = model(x)
        loss = sampler.loss(out.float(), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach()
        if on_step is not None and ((step + 1) % log_every == 0 or step + 1 == steps):
            rate = (step + 1) * sampler.batch * world / (time.perf_counter() - t0)
            on_step(step + 1, steps, float(loss_sum) / (step + 1), rate)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    return {
        "train_loss": float(loss_sum) / steps,
        "patches_per_s": steps * sampler.batch * world / seconds,
        "seconds": seconds,
    }


@torch.no_grad()
def score_windows(
    model: torch.nn.Module,
    windows: torch.Tensor,
    rf: int,
    batch: int,
    bf16: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Mitosis probability of each uint8 window (centre rf x rf, no augmentation), float32 CPU;
    ``on_batch(windows done, windows)`` after each batch."""
    was = model.training
    model.eval()
    out = []
    for i in range(0, windows.shape[0], batch):
        x = center_crop(windows[i : i + batch], rf)
        with autocast(windows.device, bf16):
            logit = logits_center(model(x)).float()
        out.append(torch.softmax(logit, 1)[:, 1].cpu())
        if on_batch is not None:
            on_batch(min(i + batch, windows.shape[0]), windows.shape[0])
    model.train(was)
    return torch.cat(out) if out else torch.zeros(0)


def evaluate(
    model: torch.nn.Module,
    windows: torch.Tensor,
    labels: torch.Tensor,
    rf: int,
    batch: int,
    bf16: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> dict:
    """Validation windows -> class-balanced CE loss, patch F1/precision/recall at 0.5, AUC."""
    p = score_windows(model, windows, rf, batch, bf16, on_batch).double().clamp(1e-7, 1 - 1e-7)
    y = labels.cpu()
    ce = -(y * p.log() + (1 - y) * (1 - p).log())
    pos, neg = ce[y == 1], ce[y == 0]
    loss = 0.5 * (pos.mean() + neg.mean()) if len(pos) and len(neg) else ce.mean()
    pred = p >= 0.5
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    return {
        "val_loss": float(loss),
        "val_f1": 2 * tp / max(1, 2 * tp + fp + fn),
        "val_precision": tp / max(1, tp + fp),
        "val_recall": tp / max(1, tp + fn),
        "val_auc": auc(p.numpy(), y.numpy()),
    }

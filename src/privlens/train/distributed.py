"""Process-group set-up for ``torchrun`` (one process per GPU, or several CPU processes).

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; without them the run is a single
process. Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``, on ``device``."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``: ``cuda:<local_rank>`` when CUDA is available, else CPU; or an explicit device."""
    if preference == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"train.device: {preference!r} requested but CUDA is not available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device


def init_distributed(preference: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` and pick this process's device."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world_size, local_rank, device)


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def max_difference_across_ranks(info: DistInfo, tensor: torch.Tensor) -> float:
    """The largest absolute difference of ``tensor`` between any rank and rank 0 (0 if alone)."""
    if not info.distributed:
        return 0.0
    local = tensor.detach().float().flatten().contiguous()
    gathered = [torch.empty_like(local) for _ in range(info.world_size)]
    dist.all_gather(gathered, local)
    return max(float((g - gathered[0]).abs().max()) for g in gathered)


def out_of_time(began: float, max_seconds: float, info: DistInfo) -> bool:
    """Whether a time box of ``max_seconds`` from ``began`` (``time.perf_counter()``) is spent;
    rank 0 decides, so that every rank stops at the same step."""
    over = time.perf_counter() - began >= max_seconds
    if not info.distributed:
        return over
    flag = torch.tensor(float(over), device=info.device)
    dist.broadcast(flag, 0)
    return bool(flag.item())

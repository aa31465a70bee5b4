"""Data-parallel training across processes started by ``torchrun``.

Each rank takes every ``world_size``-th structure of a global batch; gradients are
averaged by DistributedDataParallel, and each rank divides its loss numerators by the
global label counts times 1/world_size, so the averaged gradient equals the gradient of
the single-process loss on the whole global batch. gloo on CPU, nccl on GPU.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["Context", "start", "stop"]


class Context:
    """Rank and world size of this process (0 and 1 when not distributed)."""

    def __init__(self, rank: int = 0, world_size: int = 1, device: str = "cpu"):
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def main(self) -> bool:
        """The rank that writes files and prints."""
        return self.rank == 0

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's part of a global batch."""
        return indices[self.rank::self.world_size]

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum over ranks (a copy on the tensor's device; no gradient). nccl reduces on the GPU."""
        if not self.distributed:
            return tensor
        total = tensor.detach().to(self.device, copy=True)
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
        return total.to(tensor.device)

    def all_agree(self, ok: bool) -> bool:
        """True on every rank only when ``ok`` is True on every rank."""
        return int(self.sum(torch.tensor(int(not ok)))) == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start(device: str) -> Context:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else a single-process context.

    With ``device`` "cuda", rank r uses GPU LOCAL_RANK (``context.device``).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context()
    cuda = device.startswith("cuda")
    if cuda:
        device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Context(dist.get_rank(), dist.get_world_size(), device)


def stop(context: Context) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()

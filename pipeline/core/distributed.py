"""Run a data command on several processes joined by a torch.distributed process group.

`seqclass extract --devices N` spawns N local processes; under `torchrun` (one node or many)
or any launcher that sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``, each launched process joins
the group instead. Work is sharded by rank; results are gathered with `gather_to_all`.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def rank_and_world() -> tuple[int, int]:
    """This process's rank and the number of processes (0, 1 outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def local_device(device: str) -> str:
    """`cuda` becomes this process's own GPU (``cuda:LOCAL_RANK``); other devices stay as given."""
    if device == "cuda" and rank_and_world()[1] > 1:
        return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
    return device


def gather_to_all(value: Any) -> list[Any]:
    """`value` of every rank, in rank order (just `[value]` outside a process group)."""
    _, world = rank_and_world()
    if world == 1:
        return [value]
    gathered: list[Any] = [None] * world
    dist.all_gather_object(gathered, value)
    return gathered


def merge_to_all(mapping: dict) -> dict:
    """The union of every rank's `mapping` (disjoint keys, e.g. sample index -> result)."""
    return {k: v for part in gather_to_all(mapping) for k, v in part.items()}


def leave_process_group() -> None:
    """Wait until every rank is done, then tear the process group down (a no-op outside one):
    a gloo group left to the interpreter's exit while a peer still works can abort its process
    (seen with torch 2.14, a DDP `test` whose rank 0 still wrote its report)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def run_on_ranks(fn: Callable[..., None], devices: int, *args: Any) -> None:
    """Call `fn(*args)` on every rank: in this process if a launcher started us, else spawn.

    A rank that exits with a non-zero status makes this process exit with it.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun / srun started one process per rank
        _join_and_call(fn, args)
        return
    if devices <= 1:
        fn(*args)
        return
    port = _free_port()
    try:
        mp.spawn(_spawned_rank, args=(devices, port, fn, args), nprocs=devices)
    except mp.ProcessExitedException as err:
        sys.exit(err.exit_code or 1)


def _spawned_rank(rank: int, world: int, port: int, fn: Callable, args: tuple) -> None:
    env = {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": world, "LOCAL_WORLD_SIZE": world}
    os.environ.update({k: str(v) for k, v in env.items()})
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    # N processes share the cores: without this each would start one thread per core
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    _join_and_call(fn, args, spawned=True)


def _join_and_call(fn: Callable, args: tuple, spawned: bool = False) -> None:
    dist.init_process_group("gloo")  # only Python objects are exchanged: gloo suits CPU and GPU
    try:
        fn(*args)
        # every rank done with its messages before any tears the group down: a gloo group torn
        # down while a peer still sends can hang in its destructor (seen with torch 2.4)
        dist.barrier()
    except BaseException:
        dist.destroy_process_group()
        raise
    if spawned:  # the process ends here: skip the teardown, which torch 2.4 can still hang in
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

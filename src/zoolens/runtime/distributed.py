"""One training run over several processes (CPU processes, GPUs, machines) with Lightning's DDP.

`start_processes` is called at the very start of `train()`. With several devices it uses Lightning Fabric's
launcher, which runs the same command (or script) once more per extra device and joins every process into
one process group; under `torchrun` or SLURM's `srun` the processes already exist and are only joined.
Every process then walks through `train()`: each extracts the features of its share of the photos
(gathered so that all have all of them), fits the same head, and fine-tunes under Lightning's DDP strategy
(each process sees its share of every epoch, gradients averaged); only the first process evaluates and saves.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from zoolens.errors import ConfigError, ZoolensError


@dataclass
class Processes:
    """The processes of this run, as this one sees them."""

    rank: int = 0
    world_size: int = 1
    devices: str | int = "auto"  # per machine, as Lightning's Trainer takes them
    num_nodes: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            import torch

            torch.distributed.barrier()

    def gather(self, value) -> list:
        """`value` from every process, in rank order (each process gets the whole list)."""
        if self.world_size == 1:
            return [value]
        import torch

        gathered = [None] * self.world_size
        # all_gather_object pickles, but only in memory between the processes of this one run, never to a file.
        torch.distributed.all_gather_object(gathered, value)
        return gathered


def in_process_group() -> bool:
    """Whether this process is one of a multi-process run (its process group started; never before PyTorch is)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized()


def current_rank() -> int:
    return sys.modules["torch"].distributed.get_rank() if in_process_group() else 0


def _launcher_sizes(devices: str | int, num_nodes: int) -> tuple[str | int, int]:
    """With `--devices auto`, the process counts that torchrun or SLURM already started, so the same command
    works under `torchrun --nproc-per-node N` and `srun` without repeating the counts."""
    if str(devices) != "auto":
        return int(devices), num_nodes
    env = os.environ
    if "TORCHELASTIC_RUN_ID" in env and "LOCAL_WORLD_SIZE" in env:
        per_node = int(env["LOCAL_WORLD_SIZE"])
        return per_node, max(1, int(env.get("WORLD_SIZE", per_node)) // per_node)
    if int(env.get("SLURM_NTASKS", "1")) > 1 and "SLURM_NTASKS_PER_NODE" in env:
        per_node = int(env["SLURM_NTASKS_PER_NODE"].split("(")[0])
        return per_node, int(env.get("SLURM_NNODES", "1"))
    return devices, num_nodes


def _one_device(accelerator: str, devices: str | int, num_nodes: int) -> bool:
    """Whether the run has a single device, when that is plain without asking Lightning (which takes
    seconds to import): `auto` devices are more than one only with several GPUs."""
    if num_nodes != 1:
        return False
    return devices == 1 or (devices == "auto" and (accelerator == "cpu" or _gpu_count() <= 1))


def _gpu_count() -> int:
    """The GPUs PyTorch sees; 0 without importing it (seconds) on a machine with no NVIDIA or AMD GPU device file,
    which is every machine without one of their drivers loaded."""
    if not any(Path(device).exists() for device in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd")):
        return 0
    import torch

    return torch.cuda.device_count()


def start_processes(accelerator: str, devices: str | int, num_nodes: int = 1) -> Processes:
    """Join (or launch) the processes of a multi-device run; a single device needs none of this."""
    try:
        devices, num_nodes = _launcher_sizes(devices, num_nodes)
    except ValueError:
        devices = 0
    if devices != "auto" and devices < 1:
        raise ConfigError("devices", "give a number of devices (1 or more), or auto")
    if num_nodes < 1:
        raise ConfigError("num_nodes", f"must be at least 1, not {num_nodes}")
    if _one_device(accelerator, devices, num_nodes):
        return Processes(devices=devices)

    from lightning.fabric import Fabric
    from lightning.fabric.utilities.imports import _IS_INTERACTIVE

    try:
        counted = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes).world_size
    except Exception as error:  # Lightning's own message (MisconfigurationException and others) says what is wrong
        raise ConfigError("accelerator", f"{accelerator} with devices {devices}: {error}") from None
    if counted == 1:
        return Processes(devices=devices, num_nodes=num_nodes)
    if _IS_INTERACTIVE:
        if str(devices) == "auto":
            return Processes(devices=1)
        raise ZoolensError("training on several devices re-runs the command once per device: run it from the "
                           "command line or a script (python my_script.py), not in a notebook")
    fabric = Fabric(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy="ddp")
    fabric.launch()
    return Processes(fabric.global_rank, fabric.world_size, devices, num_nodes)

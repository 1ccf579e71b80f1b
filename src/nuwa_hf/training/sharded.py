"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for NUWA, on any device torch.distributed runs on, CPUs included.

Why not accelerate's FSDP: accelerate enables FSDP only for GPU-like devices (CUDA, XPU, NPU, ...). On CPU processes
its ``fsdp_plugin`` stays unset and ``Trainer`` would replicate the model with DDP instead. torch's FSDP2 itself has no
such limit: over gloo it shards parameters, gradients and optimizer state across CPU processes exactly as over NCCL.
So :func:`shard_nuwa` applies ``fully_shard`` here, and :class:`~nuwa_hf.training.sharded_trainer.ShardedNuwaTrainer`
tells ``Trainer`` that the model arrives already sharded (see there).

Shard units (one all-gather before, one reduce-scatter after each):

- every ``NuwaEncoderLayer`` and ``NuwaDecoderLayer`` (``layer_classes``), in module order;
- the root: everything else that trains (embeddings, position tables, final norms, ``lm_head``).

Frozen sub-modules that are not layers (all parameters ``requires_grad=False``, e.g. VQ-GANs held by the model) are
left out of sharding (``ignored_params``): every process keeps a full, replicated copy. They get no gradients and no
optimizer state, so sharding them would save only their weights, at the price of an all-gather in every forward that
uses them. Trainable parameters FSDP does not manage would be replicated and averaged by ``Trainer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Set

import torch
from torch import nn

DEFAULT_LAYER_CLASSES = ("NuwaEncoderLayer", "NuwaDecoderLayer")


@dataclass
class ShardingPlan:
    """What :func:`shard_nuwa` did: the shard units (module names) and the parameters left replicated."""

    layer_units: List[str]
    replicated_parameters: List[str]
    activation_checkpointing: bool
    world_size: int


def _frozen_non_layer_parameters(model: nn.Module, layer_classes: Sequence[str]) -> Set[nn.Parameter]:
    """Parameters of the largest sub-modules that hold no layer and whose parameters are all frozen."""
    ignored: Set[nn.Parameter] = set()
    covered: List[str] = []
    for name, module in model.named_modules():
        if not name or any(name == c or name.startswith(c + ".") for c in covered):
            continue
        if any(type(m).__name__ in layer_classes for m in module.modules()):
            continue
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            ignored.update(params)
            covered.append(name)
    return ignored


def shard_nuwa(
    model: nn.Module,
    mesh=None,
    *,
    layer_classes: Sequence[str] = DEFAULT_LAYER_CLASSES,
    reshard_after_forward: bool = True,
    activation_checkpointing: bool = False,
) -> ShardingPlan:
    """Shard ``model`` in place with FSDP2: each layer of ``layer_classes`` one unit, the rest the root unit.

    Args:
        model: a ``NuwaForConditionalGeneration`` (any module works), not yet sharded, on its training device.
        mesh: a 1-D ``DeviceMesh`` over the data-parallel processes; default: all processes of the default group on
            the model's device type (``cpu`` → gloo).
        layer_classes: class names of the modules that become their own shard unit.
        reshard_after_forward: free each unit's gathered weights after its forward (ZeRO-3 memory; all-gathered again
            in backward). False keeps them until backward (ZeRO-2-like: less communication, more memory).
        activation_checkpointing: recompute each layer's activations in backward (``torch.distributed._composable.
            checkpoint``: keeps parameter names, hence state-dict keys, unchanged), so that only the layer inputs
            ``(batch, sequence, hidden)`` are kept per layer.

    Returns:
        the :class:`ShardingPlan`. Parameters become ``DTensor`` shards (dim 0 split across the mesh).
    """
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError(
            "FSDP2 sharding needs torch.distributed initialised (launch with torchrun, or accelerate launch); for one "
            "process train without sharding."
        )
    if mesh is None:
        device = next(model.parameters()).device
        mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    layers = [(name, m) for name, m in model.named_modules() if type(m).__name__ in layer_classes]
    if not layers:
        raise ValueError(
            f"no module of the classes {list(layer_classes)} in {type(model).__name__}: nothing to shard by layer; "
            "pass the model's layer class names as layer_classes."
        )
    if activation_checkpointing:
        from torch.distributed._composable import checkpoint

        for _, layer in layers:
            checkpoint(layer)
    ignored = _frozen_non_layer_parameters(model, layer_classes)
    for _, layer in layers:
        layer_params = list(layer.parameters())
        if layer_params and not any(p.requires_grad for p in layer_params):
            continue  # a frozen layer: replicated like other frozen modules
        fully_shard(layer, mesh=mesh, reshard_after_forward=reshard_after_forward)
    fully_shard(model, mesh=mesh, reshard_after_forward=reshard_after_forward, ignored_params=ignored or None)
    names = {id(p): n for n, p in model.named_parameters()}
    return ShardingPlan(
        layer_units=[name for name, _ in layers],
        replicated_parameters=sorted(names[id(p)] for p in ignored if id(p) in names),
        activation_checkpointing=activation_checkpointing,
        world_size=mesh.size(),
    )


def is_sharded(model: nn.Module) -> bool:
    """Whether ``model`` (or a sub-module) was sharded with FSDP2."""
    from torch.distributed.fsdp import FSDPModule

    return any(isinstance(m, FSDPModule) for m in model.modules())


def _local(tensor: torch.Tensor) -> torch.Tensor:
    from torch.distributed.tensor import DTensor

    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


def local_numel(tensors: Iterable[torch.Tensor]) -> int:
    """Elements this process holds of ``tensors`` (a DTensor counts its local shard only)."""
    return sum(_local(t).numel() for t in tensors)


def local_memory_report(model: nn.Module, optimizer: Optional[torch.optim.Optimizer] = None) -> Dict[str, int]:
    """Elements held by this process: parameters, gradients and optimizer state (all tensors of the state but
    scalar step counters), each also split into trainable / frozen for parameters."""
    params = list(model.parameters())
    report = {
        "parameters": local_numel(params),
        "trainable_parameters": local_numel(p for p in params if p.requires_grad),
        "full_parameters": sum(p.numel() for p in params),
        "gradients": local_numel(p.grad for p in params if p.grad is not None),
        "optimizer_state": 0,
    }
    if optimizer is not None:
        report["optimizer_state"] = sum(
            _local(value).numel()
            for state in optimizer.state.values()
            for value in state.values()
            if isinstance(value, torch.Tensor) and value.dim() > 0
        )
    return report


def checkpoint_layers(model: nn.Module, layer_classes: Sequence[str] = DEFAULT_LAYER_CLASSES) -> int:
    """Activation checkpointing of every layer of ``layer_classes`` without sharding (one process); returns the
    number of layers. Parameter names stay unchanged."""
    from torch.distributed._composable import checkpoint

    layers = [m for m in model.modules() if type(m).__name__ in layer_classes]
    for layer in layers:
        checkpoint(layer)
    return len(layers)

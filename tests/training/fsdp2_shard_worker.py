"""Run by torchrun from test_fsdp2.py: shard a tiny NUWA that also holds a frozen, non-layer sub-module (as the
VQ-GANs may become), train one step, and write what this rank holds to ``<out>/rank<R>.json``."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor

sys.path.insert(0, str(Path(__file__).parent))

from nuwa_hf.training.sharded import local_memory_report, shard_nuwa  # noqa: E402
from nuwa_training_support import TEXT_LENGTH, TEXT_VOCAB, VISUAL_VOCAB, make_tiny_model  # noqa: E402


def main(out: str) -> None:
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model = make_tiny_model(seed=0)
    model.frozen_tokenizer = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 1))  # stands for a VQ-GAN
    model.frozen_tokenizer.requires_grad_(False)
    plan = shard_nuwa(model, activation_checkpointing=True)

    torch.manual_seed(1)  # the same batch on both ranks
    input_ids = torch.randint(1, TEXT_VOCAB, (2, TEXT_LENGTH))
    labels = torch.randint(0, VISUAL_VOCAB, (2, 1, 4, 4))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    loss = model(input_ids=input_ids, labels=labels).loss
    loss.backward()
    optimizer.step()
    frozen = list(model.frozen_tokenizer.parameters())
    layer = model.model.decoder.layers[0]
    report = {
        "rank": rank,
        "loss": loss.item(),
        "plan": {"layer_units": plan.layer_units, "replicated": plan.replicated_parameters},
        "frozen_are_plain_tensors": all(not isinstance(p, DTensor) for p in frozen),
        "frozen_have_no_grad": all(p.grad is None for p in frozen),
        "trainable_are_dtensors": all(isinstance(p, DTensor) for p in model.parameters() if p.requires_grad),
        "layer_weight_local_rows": layer.ffn.fc1.weight.to_local().shape[0],
        "layer_weight_rows": layer.ffn.fc1.weight.shape[0],
        "frozen_elements": sum(p.numel() for p in frozen),
        **local_memory_report(model, optimizer),
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])

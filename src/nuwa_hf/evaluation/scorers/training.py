"""The one small training loop the scorers share: Adam on shuffled mini-batches, seeded, CPU friendly."""

from __future__ import annotations

from typing import Callable, List, Sequence

import torch

from ..image_inputs import split_into_batches

BatchLoss = Callable[[Sequence[torch.Tensor]], torch.Tensor]


def fit_minibatches(
    model: torch.nn.Module,
    tensors: Sequence[torch.Tensor],
    batch_loss: BatchLoss,
    epochs: int,
    batch_size: int = 64,
    learning_rate: float = 2e-3,
    seed: int = 0,
    progress: bool = False,
) -> List[float]:
    """Train ``model`` in place; returns the mean loss of each epoch.

    ``tensors`` are aligned on their first axis (inputs, targets, ...); each step calls ``batch_loss`` on the
    same random rows of every tensor. The learning rate decays linearly to 0 (stable ends on tiny budgets).
    """
    count = len(tensors[0])
    if any(len(tensor) != count for tensor in tensors):
        raise ValueError(f"Training tensors must share their first axis, got lengths {[len(t) for t in tensors]}.")
    if count == 0:
        raise ValueError("No training examples.")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}.")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the model's own randomness (dropout) follows the same seed
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps_per_epoch = len(split_into_batches(count, batch_size))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / (epochs * steps_per_epoch))
    )
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * steps_per_epoch, desc=f"training {type(model).__name__}")
    epoch_losses = []
    model.train()
    for _ in range(epochs):
        order = torch.randperm(count, generator=generator)
        total = 0.0
        for batch in split_into_batches(count, batch_size):
            rows = order[batch]
            loss = batch_loss([tensor[rows] for tensor in tensors])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            total += float(loss.detach()) * len(rows)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}")
        epoch_losses.append(total / count)
    if bar is not None:
        bar.close()
    model.eval()
    return epoch_losses

"""Loss scaling under gradient accumulation: a step over an image batch and a video batch (different token counts)
follows the gradient of the per-token mean over the whole step, as with one big batch (num_items_in_batch)."""

import torch
from torch import nn

from nuwa_hf.training import NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments
from nuwa_training_support import TEXT_LENGTH, make_tiny_model, make_token_dataset


class RecordingCollator(NuwaTaskCollator):
    def __call__(self, examples):
        batch = super().__call__(examples)
        self.seen.append({k: v.clone() if torch.is_tensor(v) else v for k, v in batch.items()})
        return batch


def test_accumulated_step_follows_the_token_mean_gradient(tmp_path):
    datasets = {"t2i": make_token_dataset("t2i", 2, seed=1), "v2v": make_token_dataset("v2v", 2, seed=2)}
    model = make_tiny_model(seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    collator = RecordingCollator(max_text_length=TEXT_LENGTH)
    collator.seen = []
    lr = 0.5
    args = nuwa_training_arguments(
        str(tmp_path), max_steps=1, per_device_train_batch_size=2, gradient_accumulation_steps=2, optim="sgd",
        learning_rate=lr, warmup_steps=0, lr_scheduler_type="constant", max_grad_norm=0.0, save_strategy="no",
        disable_tqdm=True, use_cpu=True, logging_steps=1,
    )
    trainer = NuwaTrainer(model=model, args=args, train_dataset=TaskMixtureDataset(datasets), data_collator=collator,
                          condition_dropout=0.0)
    trainer.train()
    assert trainer.state.global_step == 1
    assert sorted(b["task"] for b in collator.seen) == ["t2i", "v2v"]
    tokens = [b["labels"].numel() for b in collator.seen]
    assert tokens[0] != tokens[1]  # 2 images of 1x4x4 vs 2 videos of 2x4x4

    # Reference: plain SGD on sum(CE over both batches) / (all tokens of the step).
    reference = make_tiny_model(seed=0)
    reference.load_state_dict(start)
    total, means = 0.0, []
    for batch in collator.seen:
        inputs = {k: v for k, v in batch.items() if k != "task"}
        logits = reference(**{k: v for k, v in inputs.items() if k != "labels"}, labels=inputs["labels"]).logits
        ce = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), inputs["labels"].reshape(-1), reduction="sum")
        total = total + ce
        means.append(ce / inputs["labels"].numel())
    grads = torch.autograd.grad(total / sum(tokens), list(reference.parameters()), allow_unused=True, retain_graph=True)
    naive = torch.autograd.grad(sum(means) / 2, list(reference.parameters()), allow_unused=True)
    trained = dict(model.named_parameters())
    worst = worst_naive = 0.0
    for (name, param), grad, naive_grad in zip(reference.named_parameters(), grads, naive):
        if grad is None:
            continue
        expected = param.detach() - lr * grad
        worst = max(worst, (trained[name].detach() - expected).abs().max().item())
        worst_naive = max(worst_naive, (trained[name].detach() - (param.detach() - lr * naive_grad)).abs().max().item())
    assert worst < 1e-5, worst
    # The logs give each task its own mean cross-entropy, and the step's loss is the token mean over both.
    logged = next(entry for entry in trainer.state.log_history if "loss" in entry)
    for batch, mean in zip(collator.seen, means):
        assert abs(logged[f"loss_{batch['task']}"] - mean.item()) < 1e-3
    assert abs(logged["loss"] - (total / sum(tokens)).item()) < 1e-3
    assert worst_naive > 100 * max(worst, 1e-7)  # the test would notice a mean of per-batch means

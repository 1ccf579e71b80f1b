"""The fast training path (issue 16 item 3) gives the losses of today's path: same 3DNA values, same steps."""

import pytest
import torch

from nuwa_training_support import make_tiny_model
from nuwa_hf.models.nuwa.modeling_nuwa import nuwa_3dna_attention_forward
from nuwa_hf.training import NuwaTaskCollator, NuwaTrainer, TaskMixtureDataset, nuwa_training_arguments
from nuwa_hf.training.fast_attention import TRAINING_ATTENTION, attention_plan, training_attention_forward


@pytest.mark.parametrize(
    "query_grid, key_grid, extent, causal, expected",
    [
        ((2, 4, 4), (6, 1, 1), (None, 1, 1), False, "full"),  # visual queries -> all text keys
        ((2, 4, 4), (2, 4, 4), (None, None, None), True, "causal"),  # whole-grid causal video window
        ((1, 4, 4), (1, 4, 4), (1, 3, 3), True, "dense"),  # a 3x3 window on a small image
        ((4, 16, 16), (4, 16, 16), (3, 3, 3), True, "sparse"),  # 1,024 x 1,024 pairs, 3% allowed: the tiled kernel
    ],
)
def test_each_plan_gives_the_3dna_values_and_gradients(query_grid, key_grid, extent, causal, expected):
    kind, _ = attention_plan(query_grid, key_grid, extent, causal, 0,
                             query_grid[0] * query_grid[1] * query_grid[2], key_grid[0] * key_grid[1] * key_grid[2])
    assert kind == expected
    generator = torch.Generator().manual_seed(0)
    lq, lk = query_grid[0] * query_grid[1] * query_grid[2], key_grid[0] * key_grid[1] * key_grid[2]
    q, k, v = (torch.randn(2, 2, n, 8, generator=generator, requires_grad=True) for n in (lq, lk, lk))
    grids = dict(query_grid=query_grid, key_grid=key_grid, extent=extent, causal=causal)
    results = []
    for fn in (nuwa_3dna_attention_forward, training_attention_forward):
        out, _ = fn(None, q, k, v, None, scaling=8 ** -0.5, **grids)
        weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
        results.append((out.detach(), *torch.autograd.grad((out * weight).sum(), (q, k, v))))
    for reference, fast in zip(*results):
        torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-5)


def _losses(tmp_path, token_datasets, training_attention, steps=6, bf16=False):
    model = make_tiny_model(seed=0, video_extent=(None, None, None))
    args = nuwa_training_arguments(
        str(tmp_path / f"{training_attention}-{bf16}"), max_steps=steps, per_device_train_batch_size=4, logging_steps=1,
        save_strategy="no", disable_tqdm=True, seed=0, bf16=bf16,
    )
    trainer = NuwaTrainer(
        model=model, args=args, train_dataset=TaskMixtureDataset(token_datasets),
        data_collator=NuwaTaskCollator(max_text_length=6), training_attention=training_attention,
    )
    seen = []
    original = type(model).forward

    def recording_forward(self, *a, **kw):
        seen.append(self.config._attn_implementation)
        return original(self, *a, **kw)

    type(model).forward = recording_forward
    try:
        trainer.train()
    finally:
        type(model).forward = original
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    task_losses = [{k: v for k, v in entry.items() if k.startswith("loss_")}
                   for entry in trainer.state.log_history if "loss" in entry]
    return losses, task_losses, set(seen), model


def test_fast_path_trains_with_the_same_losses_and_restores_the_attention(tmp_path, token_datasets):
    slow, slow_tasks, slow_seen, slow_model = _losses(tmp_path, token_datasets, None)
    fast, fast_tasks, fast_seen, fast_model = _losses(tmp_path, token_datasets, "auto")
    assert slow_seen == {"nuwa_3dna"} and fast_seen == {TRAINING_ATTENTION}
    assert len(slow) == len(fast) == 6
    assert slow[-1] < slow[0]  # it does learn, so equal losses are not equal constants
    assert fast == pytest.approx(slow, rel=1e-4, abs=1e-5)
    for a, b in zip(slow_tasks, fast_tasks):
        assert a.keys() == b.keys() and all(b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-5) for k in a)
    # The saved model keeps its own attention; the trained weights agree too.
    assert fast_model.config._attn_implementation == "nuwa_3dna"
    for (name, p), (_, r) in zip(fast_model.named_parameters(), slow_model.named_parameters()):
        torch.testing.assert_close(p, r, rtol=1e-4, atol=1e-5, msg=name)


def test_bf16_fast_path_follows_the_fp32_losses_within_bf16_rounding(tmp_path, token_datasets):
    """``--bf16`` (CPU autocast; attention kept in fp32) is the fastest path but not bit-compatible: its losses must
    stay within bf16 rounding (8 mantissa bits, ~0.4% per operation) of the fp32 run over the same steps."""
    fp32, _, _, _ = _losses(tmp_path, token_datasets, "auto")
    bf16, _, seen, _ = _losses(tmp_path, token_datasets, "auto", bf16=True)
    assert seen == {TRAINING_ATTENTION}
    assert bf16 != fp32  # bf16 really ran
    assert bf16 == pytest.approx(fp32, rel=3e-2)

"""One training step (forward, backward, AdamW) of the paper-like preset (time_decoding.PAPER_LIKE, 20.9M parameters)
on 10x21x21 text-to-video batches of 2: the model's 3DNA attention ("nuwa_3dna": the Triton kernel on a GPU) against
dense masked attention ("sdpa", the baseline of the ratios), fp32 and bf16 autocast, one process.
Tiny (no CUDA): NuwaConfig.tiny on 2x3x4 grids, fp32.

    python benchmarks/time_training.py [--tiny] [--out DIR]
"""

import math

import harness
import torch
from time_decoding import PAPER_LIKE

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration


def main():
    args = harness.parse_args(__doc__)
    run = harness.Run("training", args)
    grid, batch = ((2, 3, 4), 2) if run.tiny else ((10, 21, 21), 2)
    config = NuwaConfig.tiny(max_visual_grid=grid) if run.tiny else NuwaConfig.paper(**PAPER_LIKE, dropout=0.0)
    torch.manual_seed(0)
    model = NuwaForConditionalGeneration(config).train().to("cuda" if run.cuda else "cpu")
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    text = torch.randint(1, config.text_vocab_size, (batch, 5 if run.tiny else 16), generator=g).to(model.device)
    labels = torch.randint(0, config.visual_vocab_size, (batch, *grid), generator=g).to(model.device)
    run.data.update(grid=grid, batch=batch, parameters_m=round(sum(p.numel() for p in model.parameters()) / 1e6, 3),
                    tokens_per_step=batch * math.prod(grid), optimizer="AdamW (lr 1e-4)")
    rows = []
    for attention in ("sdpa", "nuwa_3dna"):
        for dtype in ("fp32", "bf16") if run.cuda else ("fp32",):
            if not run.time_left():
                rows.append(run.add(impl=attention, dtype=dtype, skipped="budget"))
                continue
            model.set_attn_implementation(attention)

            def step():
                with torch.autocast(model.device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
                    loss = model(input_ids=text, labels=labels).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)

            try:
                row = dict(impl=attention, dtype=dtype, **run.time(step))
                row["visual_tokens_per_s"] = batch * math.prod(grid) / (row["ms"] * 1e-3)
            except Exception as exc:  # noqa: BLE001 (recorded; e.g. out of memory for the dense mask)
                row = dict(impl=attention, dtype=dtype, error=harness.error_text(exc))
            rows.append(run.add(**row))
    for dtype in ("fp32", "bf16"):
        same = [r for r in rows if r["dtype"] == dtype]
        if same:
            harness.ratios(same, baseline=same[0], keys=("ms",))  # speedup_vs_sdpa, same dtype
    run.done()


if __name__ == "__main__":
    main()

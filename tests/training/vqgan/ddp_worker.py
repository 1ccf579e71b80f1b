"""Worker of test_training_vqgan_ddp.py: a few VQ-GAN steps in one process of a torchrun group; reports its state."""

import hashlib
import json
import os
import sys

import torch

from nuwa_hf.models.vqgan import NuwaVQGAN
from nuwa_hf.training.vqgan.training_vqgan import VQGANTrainingArguments, train_vqgan


def main(output_dir: str, report_dir: str) -> None:
    torch.set_num_threads(1)
    data = list(torch.rand(32, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1)
    torch.manual_seed(0)
    model = NuwaVQGAN.tiny(image_size=16, grid_size=4, codebook_size=16, base_channels=16, max_channels=32)
    args = VQGANTrainingArguments(
        output_dir=output_dir,
        max_steps=4,
        batch_size=4,
        disc_start=1,
        restart_every=2,
        logging_steps=1,
        eval_steps=0,
        save_steps=2,
        show_progress=False,
    )
    result = train_vqgan(model, data, args)
    weights = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())).hexdigest()
    report = {
        "rank": int(os.environ["RANK"]),
        "weights": weights,
        "discriminator_losses": [record.get("discriminator_loss") for record in result.history],
        "restarted": [record["restarted_codes"] for record in result.history],
    }
    # One file per rank: torchrun interleaves the ranks' stdout.
    with open(os.path.join(report_dir, f"rank-{report['rank']}.json"), "w", encoding="utf-8") as handle:
        json.dump(report, handle)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

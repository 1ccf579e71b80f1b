"""What ``negative_prompt`` does to the shipped text-to-image model, read by the shipped MNIST reader: for prompts that
leave a digit or a colour open, how often the output shows what the negative prompt names, with the negative prompt
against guidance toward the empty prompt (the default), in one process, on the same seeds and guidance.

    python benchmarks/bench_negative_prompt.py [--model checkpoints/nuwa-tiny] [--seeds 40] [--guidance 3]

Each row: the prompt, the negative prompt, what is counted (a digit or a colour), its share without and with the
negative prompt (± the binomial standard error), and the share of outputs that still show what the prompt asked
(its colour, or its digit), so that steering away is not bought by ignoring the prompt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# (prompt, negative prompt, what the negative names: ("digit", d) or ("colour", c), what the prompt asks: same form)
ROWS = [
    ("a red digit", "a red 8", ("digit", 8), ("colour", "red")),
    ("a red digit", "8", ("digit", 8), ("colour", "red")),
    ("a 3", "blue", ("colour", "blue"), ("digit", 3)),
    ("a 3", "magenta", ("colour", "magenta"), ("digit", 3)),
    ("a 3", "a blue 3", ("colour", "blue"), ("digit", 3)),
]

def _share(hits: np.ndarray) -> str:
    p, n = float(hits.mean()), len(hits)
    return f"{p:.2f} ± {np.sqrt(p * (1 - p) / n):.2f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "nuwa-tiny"))
    parser.add_argument("--reader", default=str(ROOT / "checkpoints" / "mnist-digit-reader"))
    parser.add_argument("--seeds", type=int, default=40, help="outputs per row and setting (seeds 0..n-1)")
    parser.add_argument("--guidance", default="3,1.5", help="guidance scales, comma-separated (3: the folder's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from transformers import pipeline

    from nuwa_hf.evaluation.digit_reading import default_digit_reader, read_colours, read_digits

    pipe = pipeline("nuwa-text-to-image", model=args.model)
    pipe.set_progress_bar_config(disable=True)
    reader = default_digit_reader(args.reader)

    def reads(prompt, negative, guidance):
        options = {"negative_prompt": negative} if negative else {}
        pictures = np.stack([np.asarray(image) for image in pipe(
            [prompt] * args.seeds, seed=0, batch_size=args.seeds, guidance_scale=guidance, **options)])
        return read_digits(reader, pictures).argmax(-1).numpy(), np.array(read_colours(pictures))

    def hits(read, target):
        digits, colours = read
        return digits == target[1] if target[0] == "digit" else colours == target[1]

    print(f"{args.seeds} outputs per setting; shares ± binomial standard error")
    print("| guidance | prompt | negative prompt | shows the negative's | without | with | shows the prompt's | without "
          "| with |")
    print("|---|---|---|---|---|---|---|---|---|")
    for guidance in (float(g) for g in args.guidance.split(",")):
        for prompt, negative, named, asked in ROWS:
            plain, steered = reads(prompt, None, guidance), reads(prompt, negative, guidance)
            print(f"| {guidance:g} | {prompt} | {negative} | {named[0]} {named[1]} | {_share(hits(plain, named))} | "
                  f"{_share(hits(steered, named))} | {asked[0]} {asked[1]} | {_share(hits(plain, asked))} | "
                  f"{_share(hits(steered, asked))} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

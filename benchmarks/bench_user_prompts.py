"""Text-to-image prompts as users type them, read by the shipped MNIST reader: digit and colour accuracy with the
words the model never saw left out (the pipelines' default, ``drop_unknown_words=True``) against the same prompts
given whole (``drop_unknown_words=False``), in one process, on the same seeds.

    python benchmarks/bench_user_prompts.py [--model checkpoints/nuwa-tiny] [--seeds 11,12,13] [--per-prompt]

The 40 prompts mix the caption forms the model was trained on ("a red 7", "the digit seven in red") with what people
add ("draw", "please", "generate an image of", "colored", "handwritten", "on a black background") and colours it
never learnt ("pink", "purple": counted as magenta, so they are misses unless the model happens to draw magenta).
Prints the accuracies of both modes, their difference, and with ``--per-prompt`` each prompt's reads.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# (prompt, digit asked for, colour asked for)
PROMPTS = [
    ("a red 7", 7, "red"), ("Red 7", 7, "red"), ("7 red", 7, "red"), ("7, red", 7, "red"), ("red seven", 7, "red"),
    ("a seven in red", 7, "red"), ("the digit seven in red", 7, "red"), ("Draw a red seven", 7, "red"),
    ("draw me a red 7!", 7, "red"), ("generate an image of a red 7", 7, "red"), ("a picture of a red 7", 7, "red"),
    ("an image of the number 7 colored red", 7, "red"), ("a 7 colored blue", 7, "blue"),
    ("a blue coloured 2", 2, "blue"), ("the number two, blue", 2, "blue"), ("a green 5", 5, "green"),
    ("five in green please", 5, "green"), ("Can you make a green five?", 5, "green"), ("A YELLOW 3", 3, "yellow"),
    ("yellow three.", 3, "yellow"), ("a handwritten yellow 3", 3, "yellow"), ("a cyan 8", 8, "cyan"),
    ("an eight in cyan", 8, "cyan"), ("cyan-colored 8", 8, "cyan"), ("a magenta 6", 6, "magenta"),
    ("6 magenta", 6, "magenta"), ("a pink 6", 6, "magenta"), ("a blue 0", 0, "blue"),
    ("the number zero in blue", 0, "blue"), ("a blue 1", 1, "blue"), ("one blue", 1, "blue"), ("a red 4", 4, "red"),
    ("a red four on a black background", 4, "red"), ("a green 9", 9, "green"), ("nine, green", 9, "green"),
    ("a purple 2", 2, "magenta"), ("a 3 in cyan", 3, "cyan"), ("8 in yellow", 8, "yellow"),
    ("the digit 1 in magenta", 1, "magenta"), ("a big red 5", 5, "red"),
]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "nuwa-tiny"))
    parser.add_argument("--reader", default=str(ROOT / "checkpoints" / "mnist-digit-reader"))
    parser.add_argument("--seeds", default="11,12,13")
    parser.add_argument("--per-prompt", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from transformers import pipeline

    from nuwa_hf.evaluation.digit_reading import default_digit_reader, read_colours, read_digits

    pipe = pipeline("nuwa-text-to-image", model=args.model)
    pipe.set_progress_bar_config(disable=True)
    reader = default_digit_reader(args.reader)
    seeds = [int(s) for s in args.seeds.split(",")]
    texts = [text for text, _, _ in PROMPTS]
    want_digits = np.array([d for _, d, _ in PROMPTS] * len(seeds))
    want_colours = [c for _, _, c in PROMPTS] * len(seeds)
    results = {}
    for drop in (False, True):
        pictures = np.stack([np.asarray(image) for seed in seeds
                             for image in pipe(texts, seed=seed, batch_size=len(texts), drop_unknown_words=drop)])
        digits = read_digits(reader, pictures).argmax(-1).numpy()
        colours = read_colours(pictures, [(0.0, 0.0, 1.0, 1.0)] * len(pictures), pictures.shape[1])
        results["left out" if drop else "kept"] = {
            "digit": float((digits == want_digits).mean()),
            "colour": float(np.mean([a == b for a, b in zip(colours, want_colours)])),
            "reads": [f"{d}/{c}" for d, c in zip(digits.tolist(), colours)],
        }
    n = len(want_digits)
    for mode, r in results.items():
        print(f"unknown words {mode:8s}: digit {r['digit']:.3f} ({round(r['digit'] * n)}/{n}), "
              f"colour {r['colour']:.3f} ({round(r['colour'] * n)}/{n})")
    gain = {k: results["left out"][k] - results["kept"][k] for k in ("digit", "colour")}
    print(f"left out - kept: digit {gain['digit']:+.3f}, colour {gain['colour']:+.3f}")
    if args.per_prompt:
        for i, text in enumerate(texts):
            rows = {mode: [r["reads"][i + j * len(texts)] for j in range(len(seeds))] for mode, r in results.items()}
            print(f"{text!r:42s} asked {PROMPTS[i][1]}/{PROMPTS[i][2]:8s} " + json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

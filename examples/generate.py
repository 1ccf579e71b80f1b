"""Generate with NUWA from Python: every task through transformers' `pipeline`, results written as PNG / GIF / MP4.

    python examples/generate.py --model checkpoints/nuwa-tiny --out outputs/examples
    python examples/generate.py --model checkpoints/nuwa-tiny --out outputs/examples --tasks T2I T2V --seed 3

The same calls on the command line: `nuwa-hf generate --task T2V --model ... --prompt ... --out ...`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import PIL.Image
from transformers import pipeline

import nuwa_hf  # noqa: F401  (registers NUWA and its eight pipelines with transformers)
from nuwa_hf import media


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="checkpoints/nuwa-tiny", help="a NUWA model folder or Hub repo id")
    parser.add_argument("--out", default="outputs/examples", help="output folder")
    parser.add_argument("--tasks", nargs="+", default=["T2I", "T2V", "V2V", "S2I", "I2I", "TI2I", "S2V", "TV2V"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model = args.model
    out = Path(args.out)
    tasks = {t.upper() for t in args.tasks}

    if "T2I" in tasks:
        # Text-to-image: one caption, four samples; keep the best two by a (toy) scorer, here the brightest.
        draw = pipeline("nuwa-text-to-image", model=model)
        images = draw("a red 7", num_outputs_per_input=2, num_candidates=2, seed=args.seed,
                      scorer=lambda candidates, prompt: [float(np.asarray(c).mean()) for c in candidates])
        for index, image in enumerate(images):
            print(media.save_image(image, out / f"t2i_{index}.png", upscale=4))

    if "T2V" in tasks:
        # Text-to-video; num_frames past the model's trained length slides a window over time.
        animate = pipeline("nuwa-text-to-video", model=model)
        frames = animate("the digit 3 is moving up then down", seed=args.seed)
        print(media.save_gif(frames, out / "t2v.gif", fps=4, upscale=4))
        if media.mp4_available():
            print(media.save_mp4(frames, out / "t2v.mp4", fps=4, upscale=4))
        first_frame = frames[0]
    else:
        first_frame = PIL.Image.new("RGB", (32, 32))

    if "V2V" in tasks:
        # Video prediction from one frame (a PIL image, a GIF or MP4 path, or a list of frames).
        predict = pipeline("nuwa-video-prediction", model=model)
        print(media.save_gif(predict(first_frame, num_frames_to_predict=3, seed=args.seed), out / "v2v.gif", upscale=4))

    sketch = np.zeros((32, 32), dtype=np.int64)  # class ids of the built-in scene world: 0 brick, 1 grass, 3 circle
    sketch[16:] = 1
    sketch[6:14, 10:18] = 3
    if "S2I" in tasks:
        print(media.save_image(pipeline("nuwa-sketch-to-image", model=model)(sketch, seed=args.seed),
                               out / "s2i.png", upscale=4))
    if "S2V" in tasks:
        moving = np.stack([np.roll(sketch, shift, axis=1) for shift in (0, 2, 4, 6)])
        print(media.save_gif(pipeline("nuwa-sketch-to-video", model=model)(moving, seed=args.seed), out / "s2v.gif",
                             upscale=4))

    if "I2I" in tasks:
        # Image completion: keep the top half, regenerate the bottom half (a shortcut, a box, or a mask image).
        complete = pipeline("nuwa-image-completion", model=model)
        print(media.save_image(complete(first_frame, mask="bottom half", seed=args.seed), out / "i2i.png", upscale=4))
    if "TI2I" in tasks:
        # Text-guided manipulation of a box (left, top, right, bottom) given as fractions of the image.
        edit = pipeline("nuwa-image-manipulation", model=model)
        edited = edit(first_frame, "a blue 3", mask=(0.25, 0.25, 0.75, 0.75), seed=args.seed)
        print(media.save_image(edited, out / "ti2i.png", upscale=4))
    if "TV2V" in tasks:
        # Text-guided video manipulation: the first frame is kept, the rest follows the new text.
        change = pipeline("nuwa-video-manipulation", model=model)
        print(media.save_gif(change(first_frame, "the digit 3 is moving left then right", seed=args.seed),
                             out / "tv2v.gif", upscale=4))


if __name__ == "__main__":
    main()

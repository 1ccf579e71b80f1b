"""Reading digits, colours and motions out of pictures of the digit worlds: what the project's scorers see.

One copy, used by the default checkpoint's recipe (``examples/train_default_checkpoint.py``: tune and evaluate), the
pilot study (``benchmarks/pilot_default_model.py``) and the demo page (``nuwa-hf demo`` prints what it reads next to
what was asked). Pictures are uint8 ``(N, H, W, 3)``; the digit classifier is a
:class:`nuwa_hf.evaluation.scorers.DigitClassifier` trained on MNIST (28x28, white on black).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .. import data
from ..data.attributes import COLOR_RGB


def parse_video_caption(text: str):
    """(digits, motions) a video caption names, in caption order: GODIVA's "the digit 3 is moving up then down" and
    the other phrasings of the worlds ("a red 7 moving left then right", "the number two in cyan moves down then up")."""
    words = {w: i for i, w in enumerate(data.DIGIT_WORDS)}
    digits = [int(m) if m.isdigit() else words[m]
              for m in re.findall(r"\b(\d|" + "|".join(data.DIGIT_WORDS) + r")\b", text)]
    motions = sorted((m.start(), motion) for motion in data.MOTIONS for m in re.finditer(motion, text))
    return digits, [motion for _, motion in motions]


def first_colour(text: str):
    """The first colour word of ``text`` (one of ``data.COLORS``), or None."""
    found = [(m.start(), c) for c in data.COLORS for m in re.finditer(rf"\b{c}\b", text)]
    return min(found)[1] if found else None


def mnist_crops(pictures, regions=None, threshold: float = 0.35):
    """(N, H, W, 3) uint8 -> (N, 1, 28, 28) float crops framed like MNIST (the bright pixels' box, grown by 28/20,
    centred), searched inside ``regions`` [(top, left, bottom, right)] or the whole picture. Empty crops -> zeros."""
    import torch
    import torch.nn.functional as F

    gray = pictures.astype(np.float32).max(axis=-1) / 255.0
    crops = []
    for i, g in enumerate(gray):
        if regions is not None:
            top, left, bottom, right = regions[i]
            window = np.zeros_like(g)
            window[top:bottom, left:right] = g[top:bottom, left:right]
            g = window
        ys, xs = np.nonzero(g > threshold)
        if len(ys) == 0:
            crops.append(torch.zeros(1, 28, 28))
            continue
        cy, cx = (ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2
        side = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) * 28 / 20
        half = side / 2
        pad = int(np.ceil(half)) + 2
        padded = np.pad(g, pad)
        y0, x0 = int(round(cy - half)) + pad, int(round(cx - half)) + pad
        n = max(int(round(side)), 2)
        crop = torch.from_numpy(np.ascontiguousarray(padded[y0:y0 + n, x0:x0 + n]))[None, None]
        crops.append(F.interpolate(crop, size=(28, 28), mode="bilinear", align_corners=False, antialias=True)[0])
    return torch.stack(crops)


def read_digits(classifier, pictures, regions=None):
    """Class probabilities (N, 10) of the MNIST digit classifier on ``mnist_crops``."""
    import torch

    classifier.eval()
    with torch.no_grad():
        return classifier(mnist_crops(pictures, regions)).softmax(-1)


def single_digit_videos(digit_lists):
    """Indices of the videos that show exactly one digit."""
    return [i for i, digits in enumerate(digit_lists) if len(np.ravel(digits)) == 1]


def single_digit_video_accuracy(classifier, videos, digit_lists, single):
    """Share of the ``single`` (one-digit) videos whose digit the MNIST classifier reads in MNIST-framed crops of
    every frame, class probabilities averaged over the frames."""
    clips = videos[single]
    probs = read_digits(classifier, clips.reshape(-1, *clips.shape[2:])).reshape(len(single), clips.shape[1], -1)
    intended = np.array([int(np.ravel(digit_lists[i])[0]) for i in single])
    return float((probs.mean(1).argmax(-1).numpy() == intended).mean())


def bright_blobs(picture, threshold: float = 0.35, count: int = 2):
    """Boxes (top, left, bottom, right) of the ``count`` largest 8-connected groups of bright pixels of one
    (H, W, 3) uint8 picture (the digits of a Moving MNIST frame), largest first."""
    bright = picture.astype(np.float32).max(axis=-1) / 255.0 > threshold
    seen = np.zeros_like(bright)
    blobs = []
    for y, x in zip(*np.nonzero(bright)):
        if seen[y, x]:
            continue
        stack, pixels = [(y, x)], []
        seen[y, x] = True
        while stack:
            cy, cx = stack.pop()
            pixels.append((cy, cx))
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < bright.shape[0] and 0 <= nx < bright.shape[1] and bright[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        ys, xs = np.array(pixels).T
        blobs.append((len(pixels), (int(ys.min()), int(xs.min()), int(ys.max()) + 1, int(xs.max()) + 1)))
    return [box for _, box in sorted(blobs, key=lambda b: -b[0])[:count]]


def digits_kept(classifier, videos, digit_lists):
    """Share of the true digits of each video (lists) read by the MNIST classifier in at least half of its frames:
    every frame's largest bright blobs (as many as the video has digits) are cropped MNIST-style and classified."""
    found, total = 0, 0
    for video, digits in zip(videos, digit_lists):
        seen = {d: 0 for d in digits}
        for frame in video:
            boxes = bright_blobs(frame, count=len(digits))
            if not boxes:
                continue
            read = read_digits(classifier, np.stack([frame] * len(boxes)), boxes).argmax(-1).tolist()
            for d in set(read) & set(seen):
                seen[d] += 1
        found += sum(count * 2 >= len(video) for count in seen.values())
        total += len(digits)
    return found / max(total, 1)


def read_colours(pictures, masks_xyxy=None, size=None):
    """Nearest named colour (``data.COLOR_RGB``) of the bright pixels inside each box (fractions x0, y0, x1, y1) of
    pictures ``size`` pixels high; default: the whole picture, at the pictures' own size."""
    if masks_xyxy is None:
        masks_xyxy = [(0.0, 0.0, 1.0, 1.0)] * len(pictures)
    size = int(np.asarray(pictures[0]).shape[0]) if size is None and len(pictures) else size
    names = list(data.COLORS)
    palette = np.array([COLOR_RGB[c] for c in names], dtype=np.float32)
    if palette.max() <= 1.0:
        palette = palette * 255.0
    out = []
    for picture, box in zip(pictures, masks_xyxy):
        x0, y0, x1, y1 = [int(round(v * size)) for v in box]
        region = picture[y0:y1, x0:x1].reshape(-1, 3).astype(np.float32)
        bright = region[region.max(axis=1) > 90]
        if len(bright) == 0:
            out.append(None)
            continue
        mean = bright.mean(axis=0)
        scaled = mean / max(mean.max(), 1.0) * 255.0  # hue only: normalise brightness
        out.append(names[int(np.argmin(((palette - scaled) ** 2).sum(axis=1)))])
    return out


def colour_kept(pictures, colours, box=(0.0, 0.55, 1.0, 1.0), size=None) -> list:
    """Whether each picture's bright pixels inside ``box`` (fractions x0, y0, x1, y1; default: the bottom half below
    the paste-back's 2-pixel seam at 32 px, what image completion regenerates) read as the named colour
    ``colours[i]`` (:func:`read_colours`), i.e. whether a completion took the known part's colour. A box with no
    bright pixels counts as not kept. ``pictures`` (N, H, W, 3) uint8; a list of N bools."""
    read = read_colours(pictures, [tuple(box)] * len(pictures), size)
    return [r is not None and r == c for r, c in zip(read, colours)]


def read_motion(video, threshold: float = 0.35, min_step: float = 1.0):
    """One of ``data.MOTIONS`` read off a single-digit video (T, H, W, 3) uint8 from the path of its bright pixels'
    centre: the axis along which the centre spans most, and the direction of its first move of at least ``min_step``
    pixels along it ("up then down" goes up first, whenever it turns). None when fewer than two frames have bright
    pixels or the centre does not move. No trained model: what a person checks by eye."""
    centres = []
    for frame in np.asarray(video):
        ys, xs = np.nonzero(frame.astype(np.float32).max(axis=-1) / 255.0 > threshold)
        if len(ys):
            centres.append((ys.mean(), xs.mean()))
    if len(centres) < 2:
        return None
    path = np.array(centres)  # (T', 2): (row, col) of the centre per frame
    axis = int(np.ptp(path, axis=0).argmax())
    moves = np.diff(path[:, axis])
    first = next((m for m in moves if abs(m) >= min_step), None)
    if first is None:
        return None
    if axis == 0:
        return "up then down" if first < 0 else "down then up"
    return "left then right" if first < 0 else "right then left"


READER_FOLDER = "scorers/mnist_digit_reader"


def cached_reader_folder(num_train: int = 30000, seed: int = 0) -> Path:
    """Where ``python examples/train_scorers.py digit-reader`` writes the reader that :func:`default_digit_reader`
    reads: ``<NUWA_HF_CACHE>/scorers/mnist_digit_reader/``."""
    from ..file_io import cache_root

    return cache_root() / READER_FOLDER / f"n{num_train}_seed{seed}"


def default_digit_reader(folder=None):
    """The MNIST digit classifier the demo and the readers' tests use: ``folder`` when given (e.g. the shipped
    ``checkpoints/mnist-digit-reader``), else the one in the cache (written by ``python examples/train_scorers.py
    digit-reader``), else None."""
    from .scorers.scorer_base import load_scorer

    if folder is not None:
        if not (Path(folder) / "config.json").is_file():
            raise FileNotFoundError(f"{folder} holds no digit reader (config.json); train one with "
                                    "python examples/train_scorers.py digit-reader --out FOLDER")
        return load_scorer(folder)
    cached = cached_reader_folder()
    if not (cached / "config.json").is_file():
        return None
    return load_scorer(cached)


def describe_picture(picture, classifier=None) -> str:
    """What the readers see in one (H, W, 3) uint8 picture: "reads: 7, red" (digit when a classifier is given)."""
    parts = []
    if classifier is not None:
        parts.append(str(int(read_digits(classifier, picture[None]).argmax(-1)[0])))
    colour = read_colours(picture[None])[0]
    parts.append(colour or "no bright pixels")
    return "reads: " + ", ".join(parts)


def describe_video(video, classifier=None) -> str:
    """What the readers see in one (T, H, W, 3) uint8 video: "reads: 3, red, moving up then down"."""
    video = np.asarray(video)
    parts = []
    if classifier is not None:
        probabilities = read_digits(classifier, video).mean(0)
        parts.append(str(int(probabilities.argmax())))
    colour = read_colours(video[:1])[0]
    parts.append(colour or "no bright pixels")
    motion = read_motion(video)
    parts.append(f"moving {motion}" if motion else "no motion read")
    return "reads: " + ", ".join(parts)

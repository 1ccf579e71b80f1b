"""Pilot study for the default model: small T2I variants trained for a fixed budget, held-out digit accuracy against
CPU-minutes. The recipe of ``examples/train_default_checkpoint.py`` is chosen from these rows (docs/pilot_study.md).

    python benchmarks/pilot_default_model.py --variants whole,window3,lr2e-3 --steps 900 --out runs/pilots
    python benchmarks/pilot_default_model.py --report runs/pilots      # table + docs/pilot_study.png from the results
    python benchmarks/pilot_default_model.py --snapshot-run runs/default &   # beside the recipe: keep every 2,000th step
    python benchmarks/pilot_default_model.py --score-run runs/default  # then: the recipe's own curve
    python benchmarks/pilot_default_model.py --gains-run runs/v6/piece1 --watch &  # condition gains per checkpoint
    python benchmarks/pilot_default_model.py --plot-gains runs/v6/piece1           # their curve (docs/) and table

Every variant trains NUWA on text-to-image ONLY with the project's own trainer (``examples/train_nuwa.py`` under
``torchrun --nproc_per_node 2``, one thread each, i.e. both cores), the shipped VQ-GAN (``checkpoints/nuwa-tiny/vqgan``)
and a world of the ``large_digits`` set (``nuwa_hf.data.task_worlds``), and saves a checkpoint at every third of its
steps. Each checkpoint draws 10 digits x 5 seeds from prompts "a {colour} digit {d}" (colours cycled) at guidance 3
and top-k 16; an MNIST CNN (``train_digit_classifier``, 20,000 MNIST train digits) reads an MNIST-framed crop of the
bright pixels. Minutes are wall minutes of the 2-process run (2 CPU-minutes each), read from the checkpoint times.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BASE_MODEL = {"hidden_size": 128, "num_attention_heads": 4, "encoder_layers": 2, "decoder_layers": 4,
              "intermediate_size": 512, "dropout": 0.0}
WHOLE_IMAGE = {"image_extent": [1, None, None]}

# name -> (what it tests, model-config overrides, training overrides)
PAPER_WINDOW = {"image_extent": [1, 3, 3]}
VARIANTS = {
    "whole": ("8x8 grid, whole-image decoder extent, lr 1e-3, batch 16/process", WHOLE_IMAGE, {}),
    "window3": ("the paper's 3x3 image extent at 8x8, lr 1e-3, batch 16/process", PAPER_WINDOW, {}),
    "window5": ("5x5 image extent at 8x8", {"image_extent": [1, 5, 5]}, {}),
    "lr2e-3": ("3x3 extent, learning rate 2e-3", PAPER_WINDOW, {"learning_rate": 2e-3}),
    "batch8": ("3x3 extent, batch 8/process (twice the steps in the same time)", PAPER_WINDOW, {"batch_size": 8}),
    "wide192": ("3x3 extent, hidden 192, 6 heads", {**PAPER_WINDOW, "hidden_size": 192, "num_attention_heads": 6,
                                                    "intermediate_size": 768}, {}),
    "deep6": ("3x3 extent, 6 decoder layers", {**PAPER_WINDOW, "decoder_layers": 6}, {}),
    # text-to-video alone, the default world's 7 phrasings: does the mixture, or the phrasing, keep motion unlearnt?
    "t2v_only": ("T2V alone, 4x8x8 whole-grid video extent, 7 phrasings, batch 8/process",
                 {"video_extent": [None, None, None]}, {"task": "t2v", "batch_size": 8}),
    "t2v_window3": ("T2V alone, the paper's 3x3x3 video extent, batch 8/process", {"video_extent": [3, 3, 3]},
                    {"task": "t2v", "batch_size": 8}),
}


def train_variant(name: str, args, out: Path) -> None:
    _, config, training = VARIANTS[name]
    folder = out / name
    task = training.get("task", "t2i")
    # the same number of examples per run: images at batch 16 per process, videos at 8 (4x the tokens each)
    steps = int(training.get("steps", args.steps if task != "t2i" else args.steps * (16 // training.get("batch_size", 16))))
    argv = [
        "--output-dir", str(folder), "--tasks", task, "--world", "large_digits", "--image-size", "32",
        "--vqgan", str(REPO / "checkpoints" / "nuwa-tiny" / "vqgan"), "--num-samples", str(args.num_samples),
        "--model-config", json.dumps({**BASE_MODEL, **config}), "--max-steps", str(steps),
        "--batch-size", str(training.get("batch_size", 16)), "--learning-rate", str(training.get("learning_rate", 1e-3)),
        "--warmup-ratio", "0.03", "--condition-dropout", "0.1", "--save-steps", str(max(steps // 3, 1)),
        "--save-total-limit", "10", "--logging-steps", "50", "--no-progress", "--threads", "1",
    ]
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO / "examples" / "train_nuwa.py"), *argv]
    started = time.time()
    (folder).mkdir(parents=True, exist_ok=True)
    if not (folder / "started_at.json").exists():
        (folder / "started_at.json").write_text(json.dumps({"time": started}))
    code = subprocess.call(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if code:
        raise SystemExit(f"pilot {name} failed with exit code {code}")


def digit_classifier(out: Path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))  # the scorers' training
    from train_scorers import train_digit_classifier

    from nuwa_hf.evaluation import load_scorer

    folder = out / "digit_classifier"
    if not (folder / "config.json").exists():
        train_digit_classifier(num_train=20000, epochs=1, seed=0, progress=False).save_pretrained(folder)
    return load_scorer(folder)


def score_folder(folder: Path, classifier, guidance: float = 3.0, top_k: int = 16, seeds: int = 5) -> float:
    """T2I digit accuracy of one model folder on 10 digits x ``seeds`` seeds."""
    import torch
    from transformers import pipeline

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from nuwa_hf.data import COLORS

    from nuwa_hf.evaluation.digit_reading import read_digits

    torch.manual_seed(0)
    prompts = [f"a {COLORS[1 + (d + s) % (len(COLORS) - 1)]} digit {d}" for s in range(seeds) for d in range(10)]
    wanted = np.array([d for _ in range(seeds) for d in range(10)])
    pipe = pipeline("nuwa-text-to-image", model=str(folder))
    pipe.set_progress_bar_config(disable=True)
    images = pipe(prompts, seed=0, guidance_scale=guidance, top_k=top_k, output_type="np", batch_size=25)
    pictures = (np.stack(images).clip(0, 1) * 255).round().astype(np.uint8)
    return float((read_digits(classifier, pictures).argmax(-1).numpy() == wanted).mean())


def score_video_folder(folder: Path, classifier, guidance: float = 3.0, top_k: int = 16) -> dict:
    """T2V digit and motion accuracy of one model folder on 10 digits x 4 motions ("the digit {d} is moving {m}"):
    the digit read in every frame (class probabilities averaged), the motion from the path of the digit's centre."""
    import torch
    from transformers import pipeline

    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from nuwa_hf.data import MOTIONS
    from nuwa_hf.evaluation.digit_reading import read_digits, read_motion

    torch.manual_seed(0)
    asked = [(d, m) for m in MOTIONS for d in range(10)]
    pipe = pipeline("nuwa-text-to-video", model=str(folder))
    pipe.set_progress_bar_config(disable=True)
    videos = pipe([f"the digit {d} is moving {m}" for d, m in asked], seed=0, guidance_scale=guidance, top_k=top_k,
                  output_type="np", batch_size=20)
    videos = (np.stack(videos).clip(0, 1) * 255).round().astype(np.uint8)
    frames = videos.shape[1]
    probabilities = read_digits(classifier, videos.reshape(-1, *videos.shape[2:])).reshape(len(asked), frames, -1)
    digits = probabilities.mean(1).argmax(-1).numpy()
    return {"digit_accuracy": float(np.mean([r == d for r, (d, _) in zip(digits, asked)])),
            "motion_accuracy": float(np.mean([read_motion(v) == m for v, (_, m) in zip(videos, asked)]))}


def score_variant(name: str, out: Path, classifier) -> list:
    folder = out / name
    started = json.loads((folder / "started_at.json").read_text())["time"]
    video = VARIANTS[name][2].get("task", "t2i") != "t2i"
    rows = []
    for checkpoint in sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        minutes = (checkpoint.stat().st_mtime - started) / 60
        scores = score_video_folder(checkpoint, classifier) if video else \
            {"digit_accuracy": score_folder(checkpoint, classifier)}
        rows.append({"variant": name, "step": int(checkpoint.name.split("-")[1]), "wall_minutes": round(minutes, 2),
                     "cpu_minutes": round(2 * minutes, 2), **scores})
        print(json.dumps(rows[-1]), flush=True)
    return rows


def snapshot_run(run: Path, every: int, poll_seconds: float = 20.0) -> None:
    """Beside a running recipe (its Trainer keeps only the newest checkpoint): copy ``run/nuwa/checkpoint-N`` to
    ``run/snapshots/step-N`` for every N divisible by ``every``, noting "epoch-seconds N" in ``times.txt``, until the
    run's ``training_summary.json`` appears. Start it with the recipe; ``--score-run`` reads what it kept."""
    folder = run / "snapshots"
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "started.txt").exists():
        (folder / "started.txt").write_text(f"{time.time()}\n")
    while True:
        finished = (run / "nuwa" / "training_summary.json").exists()
        for checkpoint in (run / "nuwa").glob("checkpoint-*"):
            step = int(checkpoint.name.split("-")[1])
            target = folder / f"step-{step}"
            if step % every or target.exists() or not (checkpoint / "model.safetensors").exists():
                continue
            time.sleep(5)  # let the Trainer finish writing the folder
            shutil.copytree(checkpoint, target.with_name(target.name + ".partial"))
            os.replace(target.with_name(target.name + ".partial"), target)
            with open(folder / "times.txt", "a") as f:
                f.write(f"{checkpoint.stat().st_mtime:.0f} {step}\n")
        if finished:
            return
        time.sleep(poll_seconds)


def score_run(run: Path, docs: Path) -> None:
    """The default recipe's own curve: T2I digit accuracy of the snapshots ``run/snapshots/step-N`` (copied from its
    Trainer checkpoints while it trains; ``times.txt`` holds "epoch-seconds step" lines and ``started.txt`` the start)
    against CPU-minutes -> ``run/snapshots/curve.jsonl`` and ``docs/default_run_curve.png``."""
    import torch

    torch.set_num_threads(2)
    folder = run / "snapshots"
    started = float((folder / "started.txt").read_text().split()[0])
    times = {int(step): float(when) for when, step in (line.split() for line in (folder / "times.txt").read_text()
                                                         .splitlines() if line.strip())}
    classifier = digit_classifier(run)
    rows = []
    for step in sorted(times):
        accuracy = score_folder(folder / f"step-{step}", classifier)
        rows.append({"step": step, "cpu_minutes": round(2 * (times[step] - started) / 60, 1),
                     "digit_accuracy": accuracy})
        print(json.dumps(rows[-1]), flush=True)
    (folder / "curve.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["cpu_minutes"] for r in rows], [r["digit_accuracy"] for r in rows], marker="o",
            label="default recipe: 5 tasks mixed, T2I 30% of batches")
    ax.axhline(0.9, color="gray", lw=0.5, ls="--", label="T2I target 0.90")
    ax.set_xlabel("CPU-minutes (2 processes x wall minutes, tokenisation included)")
    ax.set_ylabel("held-out T2I digit accuracy (50 samples)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    docs.mkdir(parents=True, exist_ok=True)
    fig.savefig(docs / "default_run_curve.png", dpi=120)


def gains_run(run: Path, *, sampled_every: int = 2000, tasks: str = "t2i,t2v,s2i,s2v", num_examples: int = 40,
              watch: bool = False, poll_seconds: float = 30.0, image_size: Optional[int] = None) -> list:
    """The fast signal of a training run, snapshot by snapshot: for every Trainer checkpoint ``run/checkpoint-N`` (a
    run started with a large ``--save-total-limit`` keeps them all), the teacher-forced condition gains
    (``nuwa_hf.evaluation.condition_gain``, seconds each) and, every ``sampled_every`` steps and at the end, sampled
    T2I digit and T2V digit / motion accuracy read by the shipped MNIST reader -> one JSON line per checkpoint in
    ``run/gains.jsonl`` (already scored checkpoints are skipped, so it resumes). ``watch`` keeps polling until the run
    writes ``training_summary.json``."""
    import torch

    from nuwa_hf import NuwaForConditionalGeneration, NuwaProcessor
    from nuwa_hf.evaluation import load_scorer
    from nuwa_hf.evaluation.condition_gain import condition_gains, format_gains

    out = run / "gains.jsonl"
    done = {json.loads(line)["step"] for line in out.read_text().splitlines() if line.strip()} if out.exists() else set()
    reader = load_scorer(REPO / "checkpoints" / "mnist-digit-reader")
    started = min((p.stat().st_mtime for p in run.iterdir()), default=time.time())
    rows = []
    while True:
        finished = (run / "training_summary.json").exists()
        checkpoints = sorted(run.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
        for checkpoint in checkpoints:
            step = int(checkpoint.name.split("-")[1])
            if step in done or not (checkpoint / "model.safetensors").exists():
                continue
            time.sleep(3)  # let the Trainer finish writing the folder
            model = NuwaForConditionalGeneration.from_pretrained(checkpoint, use_safetensors=True)
            # the Trainer saves the processor into each checkpoint; else the run's (or its parent's) folder has it
            processor = NuwaProcessor.from_pretrained(next(
                (folder for folder in (checkpoint, run) if (folder / "processor_config.json").exists()), run.parent))
            started_scoring = time.time()
            gains = condition_gains(model, processor, tasks.split(","), num_examples=num_examples, image_size=image_size)
            row = {"step": step, "wall_minutes": round((checkpoint.stat().st_mtime - started) / 60, 1), "gains": gains}
            if step % sampled_every == 0 or (finished and checkpoint == checkpoints[-1]):
                torch.manual_seed(0)
                row["t2i_digit_accuracy"] = score_folder(checkpoint, reader)
                row.update({f"t2v_{k}": v for k, v in score_video_folder(checkpoint, reader).items()})
            row["scoring_seconds"] = round(time.time() - started_scoring, 1)
            print(f"step {step}:\n{format_gains(gains)}", {k: v for k, v in row.items() if k != "gains"}, flush=True)
            with open(out, "a") as f:
                f.write(json.dumps(row) + "\n")
            done.add(step)
            rows.append(row)
        if finished or not watch:
            return rows
        time.sleep(poll_seconds)


def plot_gains(run: Path, docs: Path, name: str = "default_run_gains.png") -> list:
    """The fast signal against CPU-minutes from ``run/gains.jsonl`` (written by :func:`gains_run`): the condition gains
    of the motion, digit and shape, and the sampled accuracies where a snapshot has them -> ``docs/<name>`` and a
    markdown table (returned as lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sorted((json.loads(line) for line in (run / "gains.jsonl").read_text().splitlines() if line.strip()),
                  key=lambda r: r["step"])
    minutes = [2 * r["wall_minutes"] for r in rows]
    fig, (gain_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for task, attribute, label in (("t2v", "motion", "T2V motion"), ("t2v", "digit", "T2V digit"),
                                   ("t2i", "digit", "T2I digit"), ("s2i", "shape_class", "S2I shape class")):
        gain_ax.plot(minutes, [r["gains"][task][attribute]["gain"] for r in rows], marker="o", label=label)
    gain_ax.set_yscale("symlog", linthresh=1.0)
    gain_ax.set_xlabel("CPU-minutes of this run (2 processes)")
    gain_ax.set_ylabel("condition gain, nats per example (symlog)")
    gain_ax.legend(fontsize=7)
    sampled = [r for r in rows if "t2i_digit_accuracy" in r]
    for key, label in (("t2i_digit_accuracy", "T2I digit"), ("t2v_digit_accuracy", "T2V digit (mean over frames)"),
                       ("t2v_motion_accuracy", "T2V motion")):
        acc_ax.plot([2 * r["wall_minutes"] for r in sampled], [r[key] for r in sampled], marker="o", label=label)
    acc_ax.axhline(0.25, color="gray", lw=0.5, ls=":")
    acc_ax.set_ylim(0, 1)
    acc_ax.set_xlabel("CPU-minutes of this run (2 processes)")
    acc_ax.set_ylabel("sampled accuracy (independent MNIST reader)")
    acc_ax.legend(fontsize=7)
    fig.tight_layout()
    docs.mkdir(parents=True, exist_ok=True)
    fig.savefig(docs / name, dpi=110)
    lines = ["| step | CPU-min | T2V motion gain / true lowest | T2V digit gain | T2I digit gain | S2I shape class gain "
             "| sampled T2I digit | sampled T2V digit / motion |", "|---|---|---|---|---|---|---|---|"]
    for r, m in zip(rows, minutes):
        g = r["gains"]
        sampled_cells = (f"{r['t2i_digit_accuracy']:.2f} | {r['t2v_digit_accuracy']:.2f} / {r['t2v_motion_accuracy']:.2f}"
                         if "t2i_digit_accuracy" in r else " | ")
        lines.append(f"| {r['step']} | {m:.0f} | {g['t2v']['motion']['gain']:.2f} / {g['t2v']['motion']['true_lowest']:.2f} "
                     f"| {g['t2v']['digit']['gain']:.1f} | {g['t2i']['digit']['gain']:.1f} "
                     f"| {g['s2i']['shape_class']['gain']:.2f} | {sampled_cells} |")
    return lines


def report(out: Path, docs: Path) -> None:
    """Markdown table and a PNG of accuracy against CPU-minutes from ``out/results.jsonl``."""
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["variant"] for r in rows):
        points = sorted((r["cpu_minutes"], r["digit_accuracy"]) for r in rows if r["variant"] == name)
        ax.plot(*zip(*points), marker="o", label=f"{name}: {VARIANTS.get(name, ('',))[0]}")
    ax.set_xlabel("CPU-minutes (2 processes x wall minutes)")
    ax.set_ylabel("held-out T2I digit accuracy (50 samples)")
    ax.set_ylim(0, 1)
    ax.axhline(0.1, color="gray", lw=0.5, ls=":")
    ax.legend(fontsize=6)
    fig.tight_layout()
    docs.mkdir(parents=True, exist_ok=True)
    fig.savefig(docs / "pilot_study.png", dpi=120)
    lines = ["| variant | what it tests | step | CPU-min | digit accuracy | motion accuracy (T2V) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        motion = f"{r['motion_accuracy']:.2f}" if "motion_accuracy" in r else ""
        lines.append(f"| {r['variant']} | {VARIANTS.get(r['variant'], ('',))[0]} | {r['step']} | {r['cpu_minutes']:.1f} "
                     f"| {r['digit_accuracy']:.2f} | {motion} |")
    print("\n".join(lines))
    (out / "table.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", default="whole,window3,lr2e-3", help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=900, help="steps at batch 16 per process (scaled for batch 8)")
    parser.add_argument("--num-samples", type=int, default=20000, help="training images (the world's train split)")
    parser.add_argument("--out", default="runs/pilots")
    parser.add_argument("--report", default=None, metavar="OUT", help="only write the table and plot of OUT")
    parser.add_argument("--docs", default=str(REPO / "docs"))
    parser.add_argument("--score-run", default=None, metavar="WORK_DIR",
                        help="score the snapshots of a default-recipe run (WORK_DIR/snapshots) instead")
    parser.add_argument("--snapshot-run", default=None, metavar="WORK_DIR",
                        help="keep every --every-th checkpoint of a running recipe in WORK_DIR/snapshots, then exit")
    parser.add_argument("--every", type=int, default=2000, help="snapshot interval in steps (--snapshot-run)")
    parser.add_argument("--gains-run", default=None, metavar="RUN_DIR",
                        help="condition gains of every checkpoint-N of a nuwa-hf train run (RUN_DIR/gains.jsonl), "
                             "sampled accuracy every --every steps; with --watch until the run ends")
    parser.add_argument("--watch", action="store_true", help="--gains-run: keep scoring new checkpoints")
    parser.add_argument("--plot-gains", default=None, metavar="RUN_DIR",
                        help="plot RUN_DIR/gains.jsonl against CPU-minutes (docs/default_run_gains.png) and print a table")
    args = parser.parse_args(argv)
    if args.gains_run:
        gains_run(Path(args.gains_run), sampled_every=args.every, watch=args.watch)
        return 0
    if args.plot_gains:
        print("\n".join(plot_gains(Path(args.plot_gains), Path(args.docs))))
        return 0
    if args.snapshot_run:
        snapshot_run(Path(args.snapshot_run), args.every)
        return 0
    if args.score_run:
        score_run(Path(args.score_run), Path(args.docs))
        return 0
    if args.report:
        report(Path(args.report), Path(args.docs))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    done = {json.loads(line)["variant"] for line in (out / "results.jsonl").read_text().splitlines()
            if line.strip()} if (out / "results.jsonl").exists() else set()
    for name in [v.strip() for v in args.variants.split(",") if v.strip()]:
        if name not in VARIANTS:
            raise SystemExit(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        if name in done:  # resumable: a scored variant is never trained again
            continue
        train_variant(name, args, out)
        import torch

        torch.set_num_threads(2)
        rows = score_variant(name, out, digit_classifier(out))
        with open(out / "results.jsonl", "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    report(out, Path(args.docs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""A user fine-tunes a trained model on a folder of their own captioned pictures, from the command line, then
generates with the saved folder: the words of their captions must stay in the prompts, and a caption column under
another name must be refused with the fix."""

import json
import logging

import numpy as np
import pytest
from PIL import Image

# words the tiny model folder's captions (support.tiny_model_folder.TINY_CAPTIONS) never had
USER_WORDS = ("cat", "dog")


def write_user_folder(folder, caption_key="text", count=8):
    """Pictures as people have them (square and not, RGB and RGBA, larger than the model's frames) and a
    metadata.jsonl naming each with its caption under ``caption_key``."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        size = [(24, 24), (20, 30), (40, 28), (16, 16)][i % 4]
        pixels = rng.integers(0, 256, (size[1], size[0], 4 if i % 3 == 0 else 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:03d}.png")
        lines.append(json.dumps({"file_name": f"{i:03d}.png",
                                 caption_key: f"a {'red' if i % 2 else 'blue'} {USER_WORDS[i % 2]}"}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def finetune_argv(tiny_model_folder, data, out, max_steps=2):
    return ["train", "--tasks", "t2i", "--train-data", f"t2i={data}", "--init-from", tiny_model_folder,
            "--output-dir", str(out), "--image-size", "16", "--max-text-length", "16", "--batch-size", "4",
            "--max-steps", str(max_steps), "--save-steps", "1", "--no-progress", "--threads", "1"]


def test_finetuned_folder_keeps_the_users_caption_words_in_prompts(tiny_model_folder, tmp_path, caplog):
    import nuwa_hf  # noqa: F401  (registers the pipelines)
    from transformers import pipeline

    from nuwa_hf.cli import main as cli

    base_record = json.loads(open(f"{tiny_model_folder}/tokenizer_config.json").read())["caption_words"]
    assert not set(USER_WORDS) & set(base_record)  # the premise: the base model never had these words

    out = tmp_path / "finetuned"
    with caplog.at_level(logging.WARNING, logger="nuwa_hf.training"):
        assert cli(finetune_argv(tiny_model_folder, write_user_folder(tmp_path / "pictures"), out)) == 0

    # the user is told which of their words the tokenizer splits, and into what
    notice = next(r.getMessage() for r in caplog.records if "new to the tokenizer" in r.getMessage())
    for word in USER_WORDS:
        assert f"{word!r} -> " in notice
    # the saved folder and its checkpoints record the run's caption words beside the base model's
    for folder in (out, out / "checkpoint-2"):
        record = json.loads((folder / "tokenizer_config.json").read_text())["caption_words"]
        assert set(record) == set(base_record) | set(USER_WORDS) | {"a", "red", "blue"}
        assert record == sorted(record)

    # generation with the fine-tuned model reads "cat": strict=True refuses prompts with words the model never saw
    t2i = pipeline("nuwa-text-to-image", model=str(out))
    image = t2i("a red cat", seed=0, strict=True)
    assert isinstance(image, Image.Image)
    with pytest.raises(ValueError, match="purple"):  # a word neither run's captions had is still unknown
        t2i("a purple cat", seed=0, strict=True)


def test_resuming_a_finetuning_run_keeps_the_same_record(tiny_model_folder, tmp_path):
    """The record is rebuilt the same way when the run resumes, so checkpoints and the final folder agree."""
    from nuwa_hf.cli import main as cli

    data, out = write_user_folder(tmp_path / "pictures"), tmp_path / "finetuned"
    assert cli(finetune_argv(tiny_model_folder, data, out, max_steps=1)) == 0
    first = json.loads((out / "checkpoint-1" / "tokenizer_config.json").read_text())["caption_words"]
    assert "cat" in first
    assert cli(finetune_argv(tiny_model_folder, data, out, max_steps=2)) == 0  # resumes from checkpoint-1
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_step"] == 2 and summary["resumed_from"].endswith("checkpoint-1")
    assert json.loads((out / "tokenizer_config.json").read_text())["caption_words"] == first


@pytest.mark.parametrize("key", ["caption", "prompt"])
def test_a_caption_under_another_key_is_refused_with_the_fix(tiny_model_folder, tmp_path, capsys, key):
    from nuwa_hf.cli import main as cli

    data = write_user_folder(tmp_path / "pictures", caption_key=key)
    assert cli(finetune_argv(tiny_model_folder, data, tmp_path / "out")) == 2
    error = capsys.readouterr().err
    assert "metadata.jsonl:1 needs a 'text' string" in error
    assert f"It has {key!r} instead: rename that key to 'text'" in error

"""nuwa-hf train --init-from a model trained on shorter clips grows its position tables; --task-num-samples sets
each task's number of examples."""

import json

import pytest


def test_init_from_a_three_frame_model_trains_on_four_frame_clips(tiny_model_folder, tmp_path):
    from nuwa_hf import NuwaForConditionalGeneration
    from nuwa_hf.training.main import main

    before = NuwaForConditionalGeneration.from_pretrained(tiny_model_folder)
    assert before.config.max_visual_grid[0] == 3
    out = tmp_path / "longer"
    assert main(["--output-dir", str(out), "--init-from", tiny_model_folder, "--tasks", "t2i,t2v",
                 "--num-samples", "8", "--task-num-samples", "t2i=12", "--image-size", "16", "--num-frames", "4",
                 "--batch-size", "4", "--max-steps", "2", "--max-text-length", "16", "--no-progress", "--threads", "1"]) == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["examples"] == {"t2i": 12, "t2v": 8}
    assert summary["grids"]["t2v"] == {"visual_grid": [4, 4, 4]}
    after = NuwaForConditionalGeneration.from_pretrained(str(out))
    assert after.config.max_visual_grid[0] == 4 and after.config.max_sketch_grid[0] >= 4
    assert after.model.decoder.embedding.time.weight.shape[0] == 4


def test_a_bad_task_num_samples_spec_names_the_flag(tmp_path):
    from nuwa_hf.training.main import main

    with pytest.raises(ValueError, match="--task-num-samples"):
        main(["--output-dir", str(tmp_path / "bad"), "--tasks", "t2i", "--task-num-samples", "t2i:5",
              "--max-steps", "1", "--no-progress"])


def test_init_from_switches_on_3d_rope_and_refuses_shape_changes(tiny_model_folder, tmp_path):
    """--model-config on a continuation: fields that keep the weights' shapes (3D RoPE) apply; others are refused with
    the list of what may change."""
    from nuwa_hf import NuwaForConditionalGeneration
    from nuwa_hf.training.main import main

    common = ["--init-from", tiny_model_folder, "--tasks", "t2i", "--num-samples", "8", "--image-size", "16",
              "--batch-size", "4", "--max-steps", "1", "--max-text-length", "16", "--no-progress", "--threads", "1"]
    out = tmp_path / "rope"
    assert main(["--output-dir", str(out), "--model-config", '{"rope_3d": true, "rope_theta": 50}', *common]) == 0
    after = NuwaForConditionalGeneration.from_pretrained(str(out))
    assert after.config.rope_3d is True and after.config.rope_theta == 50.0
    with pytest.raises(ValueError, match="hidden_size cannot change with --init-from"):
        main(["--output-dir", str(tmp_path / "wider"), "--model-config", '{"hidden_size": 256}', *common])

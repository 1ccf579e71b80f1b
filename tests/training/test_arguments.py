"""``nuwa-hf train``'s options as HfArgumentParser dataclasses: the same flags, defaults and errors as before."""

import json

import pytest
from transformers import HfArgumentParser

from nuwa_hf.training import NuwaRunArguments, build_parser
from nuwa_hf.training.arguments import ARGUMENT_CLASSES
from nuwa_hf.training.main import parse_args
from nuwa_hf.training.recipe import PAPER_RECIPE


def test_flags_parse_into_the_run_and_its_training_arguments(tmp_path):
    args, make_training_arguments = parse_args([
        "--output-dir", str(tmp_path), "--no-token-cache", "--bf16", "--no-progress", "--max-steps", "7",
        "--train-data", "t2i=a", "--train-data", "t2v=b", "--task-batch-sizes", "t2i=3", "--batch_size", "5",
        "--warmup-ratio", "0.2", "--hub-strategy", "end",
    ])
    assert args.token_cache is False and args.bf16 is True and args.no_progress is True
    assert args.train_data == ["t2i=a", "t2v=b"]  # repeatable, in order
    assert args.task_batch_sizes == "t2i=3" and args.batch_size == 5  # "-" and "_" spellings both work
    training = make_training_arguments()
    assert training.max_steps == 7 and training.per_device_train_batch_size == 5 and training.bf16
    assert training.disable_tqdm and training.warmup_steps == 0.2 and training.hub_strategy == "end"
    assert training.learning_rate == PAPER_RECIPE["learning_rate"] and training.output_dir == str(tmp_path)


def test_defaults_are_the_recipes():
    args, _ = parse_args(["--output-dir", "x"])
    assert args.tasks == "all" and args.token_cache is True and args.resume == "auto" and args.train_data == []
    assert args.lr_scheduler == PAPER_RECIPE["lr_scheduler_type"] and args.max_grad_norm == PAPER_RECIPE["max_grad_norm"]
    assert args.attn_implementation is None and args.model_preset == "tiny"


@pytest.mark.parametrize("extra, message", [
    (["--num-samples", "0"], r"--num-samples must be >= 1, got 0\."),
    (["--threads", "0"], r"--threads must be >= 1, got 0\."),
    (["--task-block-size", "0"], r"--task-block-size must be >= 1, got 0\."),
    (["--condition-dropout", "1"], r"--condition-dropout must lie in \[0, 1\), got 1\.0\."),
    (["--warmup-ratio", "-0.1"], r"--warmup-ratio must lie in \[0, 1\)"),
    (["--learning-rate", "0"], r"--learning-rate must be positive"),
    (["--max-text-length", "0"], r"--max-text-length must be >= 1"),
])
def test_bad_values_name_the_flag(extra, message):
    with pytest.raises(ValueError, match=message):
        parse_args(["--output-dir", "x", *extra])


@pytest.mark.parametrize("argv", [["--output-dir", "x", "--bogus", "1"], ["--output-dir", "x", "--world", "moon"], []])
def test_unknown_flags_bad_choices_and_a_missing_output_dir_exit_like_argparse(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "nuwa-hf train: error" in capsys.readouterr().err


def test_the_same_dataclasses_load_from_a_json_file(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"output_dir": "runs/x", "max_steps": 3, "tasks": "t2i", "bf16": True}))
    data, _, _, run, _ = HfArgumentParser(ARGUMENT_CLASSES).parse_json_file(str(path))
    assert isinstance(run, NuwaRunArguments) and run.max_steps == 3 and run.bf16 and data.tasks == "t2i"
    with pytest.raises(ValueError, match="--max-steps must be >= 1"):
        path.write_text(json.dumps({"output_dir": "runs/x", "max_steps": 0}))
        HfArgumentParser(ARGUMENT_CLASSES).parse_json_file(str(path))


def test_one_json_file_on_the_command_line_holds_every_option(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"output_dir": str(tmp_path / "run"), "max_steps": 9, "token_cache": False,
                                "train_data": ["t2i=a"]}))
    args, make_training_arguments = parse_args([str(path)])
    assert args.max_steps == 9 and args.token_cache is False and args.train_data == ["t2i=a"] and args.seed == 0
    assert make_training_arguments().max_steps == 9


def test_the_default_recipes_command_line_parses(tmp_path):
    """examples/train_default_checkpoint.py's NUWA stages (first and continued run) build argv for this parser."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    recipe_args = recipe.parse_args(["--work-dir", str(tmp_path), "--continue-steps", "10"])
    for continued in (False, True):
        args, make_training_arguments = parse_args(recipe.nuwa_argv(recipe_args, tmp_path, continued))
        assert args.tasks == "t2i,t2v,v2v,s2i,s2v" and args.no_progress and args.condition_dropout == 0.1
        assert args.task_batch_sizes == "t2i=16,s2i=16,t2v=8,v2v=8,s2v=8"
        assert (args.init_from is not None) == continued
        assert json.loads(args.model_config)["video_extent"] == [None, None, None]
        assert make_training_arguments().warmup_steps == 0.03


def test_the_recipes_tune_stage_chooses_per_task_by_the_one_standard_error_rule():
    """v6's validation rows: T2I's digit and colour prefer guidance 3 / top-k 8, T2V's digit and motion 5 / 32."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    rows = [dict(guidance_scale=g, top_k=k, **{"T2I digit": a, "T2I colour": c, "T2V digit": d, "T2V motion": m})
            for g, k, a, c, d, m in [(1.5, 8, 0.70, 0.70, 0.475, 0.225), (3.0, 8, 0.95, 0.95, 0.675, 0.15),
                                     (5.0, 8, 0.70, 0.80, 0.775, 0.275), (5.0, 32, 0.625, 0.7, 0.95, 0.725)]]
    t2i, t2i_mean, _ = recipe.choose_sampling(rows, ["T2I digit", "T2I colour"], 40)
    t2v, _, _ = recipe.choose_sampling(rows, ["T2V digit", "T2V motion"], 40)
    assert (t2i["guidance_scale"], t2i["top_k"], t2i_mean) == (3.0, 8, 0.95)
    assert (t2v["guidance_scale"], t2v["top_k"]) == (5.0, 32)
    # a setting within one standard error of the best and milder is preferred
    close = [dict(rows[1], **{"T2I digit": 0.93, "T2I colour": 0.93, "guidance_scale": 1.5}), rows[1]]
    assert recipe.choose_sampling(close, ["T2I digit", "T2I colour"], 40)[0]["guidance_scale"] == 1.5
    # means over pixels are not shares: they add no binomial error, so the best mean wins
    best, _, error = recipe.choose_sampling(close, ["T2I digit", "T2I colour"], 40, shares=[])
    assert error == 0.0 and best["guidance_scale"] == 3.0


def test_the_recipes_tune_tasks_stage_writes_each_tasks_own_sampling_and_keeps_the_text_tasks(tmp_path, monkeypatch):
    """tune_tasks scores each setting on the validation split (evaluate_task, replaced here by a table whose rows
    depend on the setting), keeps the mildest within one standard error (lowest guidance, then highest top-k), gives
    guidance only to tasks with a condition, and adds the entries beside the text tasks' in generation_config.json."""
    import importlib.util
    import json
    from pathlib import Path

    from transformers import GenerationConfig

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    config = GenerationConfig(do_sample=True, top_k=8, guidance_scale=3.0)
    config.task_sampling = {"nuwa-text-to-image": {"guidance_scale": 3.0, "top_k": 8}}
    config._from_model_config = False
    config.save_pretrained(tmp_path)
    calls = []

    def fake_table(args, context, code, split, sampling, frechet=True):
        calls.append((code, split, dict(sampling), frechet, args.eval_samples))
        g, k = sampling.get("guidance_scale", 1.0), sampling["top_k"]
        # I2I: best at top-k 4 by far; TI2I: guidance 5 best but 3 within one standard error, top-k ties
        value = {"I2I": 0.9 if k == 4 else 0.5, "TI2I": {1.0: 0.3, 3.0: 0.78, 5.0: 0.8}[g]}[code]
        if sampling.get("scorer") == "likelihood":  # reranking: I2I gains 0.08, TI2I 0.005 (less than the minimum)
            value += {"I2I": 0.08, "TI2I": 0.005}[code]
        if sampling.get("scorer") == "condition_gain":  # TI2I gains 0.06 (more than the error, 0.03)
            value += 0.06
        return {"rows": [{"metric": m, "value": value} for m in recipe.TUNE_TASK_METRICS[code]],
                "generation_seconds": 2.0 * sampling.get("num_candidates", 1), "num_samples": args.eval_samples}

    monkeypatch.setattr(recipe, "evaluation_context", lambda args, work: None)
    monkeypatch.setattr(recipe, "evaluate_task", fake_table)
    args = recipe.parse_args(["--output", str(tmp_path), "--tune-task-list", "I2I,TI2I", "--tune-samples", "100",
                              "--tune-task-samples", "I2I=300", "--tune-rerank-tasks", "I2I,TI2I",
                              "--eval-samples", "7"])
    out = recipe.stage_tune_tasks(args, tmp_path)
    saved = json.loads((tmp_path / "generation_config.json").read_text())["task_sampling"]
    assert saved == {"nuwa-text-to-image": {"guidance_scale": 3.0, "top_k": 8},
                     "nuwa-image-completion": {"top_k": 4, "scorer": "likelihood", "num_candidates": 4},
                     "nuwa-image-manipulation": {"top_k": 32, "guidance_scale": 3.0, "scorer": "condition_gain",
                                                 "num_candidates": 4}}
    assert out["task_sampling"] == {k: v for k, v in saved.items() if k != "nuwa-text-to-image"}
    assert {c[1] for c in calls} == {"validation"} and not any(c[3] for c in calls)  # never the test split, no FID
    # --tune-task-samples for I2I, --tune-samples for the rest, then --eval-samples restored
    assert {c[4] for c in calls if c[0] == "I2I"} == {300} and {c[4] for c in calls if c[0] == "TI2I"} == {100}
    assert args.eval_samples == 7 and out["tasks"]["I2I"]["samples"] == 300
    tuning = [c for c in calls if "num_candidates" not in c[2]]
    assert sorted(c[2]["top_k"] for c in tuning if c[0] == "I2I") == [4, 8, 32]  # no guidance without a condition
    assert all("guidance_scale" not in c[2] for c in calls if c[0] == "I2I")
    assert len([c for c in tuning if c[0] == "TI2I"]) == 9
    # the reranking test: one sample against the best of 4 by each model scorer, each with the sampling just chosen;
    # no condition gain for I2I (no condition)
    assert [c[2] for c in calls if "num_candidates" in c[2] and c[0] == "I2I"] == [
        {"top_k": 4, "num_candidates": 1}, {"top_k": 4, "scorer": "likelihood", "num_candidates": 4}]
    assert [c[2].get("scorer") for c in calls if "num_candidates" in c[2] and c[0] == "TI2I"] == [
        None, "likelihood", "condition_gain"]
    assert out["tasks"]["I2I"]["rerank"]["kept"] == "likelihood"
    rerank = out["tasks"]["TI2I"]["rerank"]
    assert rerank["kept"] == "condition_gain"
    assert not rerank["comparisons"]["likelihood vs one"]["passed"]
    assert rerank["comparisons"]["condition_gain vs likelihood"]["passed"]
    assert rerank["seconds_per_output"] == {"one": 0.02, "likelihood": 0.08, "condition_gain": 0.08}


def test_the_recipes_reranking_test_tries_the_attribute_posterior_only_on_text_tasks(tmp_path, monkeypatch):
    """--tune-rerank-scorers may add "attribute_posterior": the reranking test tries it for a task whose condition is
    a prompt (TI2I, TV2V) and not for one without (I2I: the pipeline would refuse it), and keeps it by rerank_choice
    like the other scorers."""
    import importlib.util
    import json
    from pathlib import Path

    from transformers import GenerationConfig

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    config = GenerationConfig(do_sample=True, top_k=8, guidance_scale=3.0)
    config.task_sampling = {"nuwa-image-manipulation": {"guidance_scale": 3.0, "top_k": 8}}
    config._from_model_config = False
    config.save_pretrained(tmp_path)
    calls = []

    def fake_table(args, context, code, split, sampling, frechet=True):
        calls.append((code, sampling.get("scorer")))
        value = 0.5 + (0.1 if sampling.get("scorer") == "attribute_posterior" else 0.0)  # TI2I / TV2V: it wins
        return {"rows": [{"metric": m, "value": value} for m in recipe.TUNE_TASK_METRICS[code]],
                "generation_seconds": 1.0, "num_samples": args.eval_samples}

    monkeypatch.setattr(recipe, "evaluation_context", lambda args, work: None)
    monkeypatch.setattr(recipe, "evaluate_task", fake_table)
    args = recipe.parse_args(["--output", str(tmp_path), "--tune-task-list", "NONE", "--tune-rerank-tasks",
                              "I2I,TI2I,TV2V", "--tune-rerank-scorers", "likelihood,condition_gain,attribute_posterior",
                              "--tune-samples", "100"])
    out = recipe.stage_tune_tasks(args, tmp_path)
    assert [s for c, s in calls if c == "I2I"] == [None, "likelihood"]
    for code in ("TI2I", "TV2V"):
        assert [s for c, s in calls if c == code] == [None, "likelihood", "condition_gain", "attribute_posterior"]
        assert out["tasks"][code]["rerank"]["kept"] == "attribute_posterior"
    saved = json.loads((tmp_path / "generation_config.json").read_text())["task_sampling"]
    assert saved["nuwa-image-manipulation"] == {"guidance_scale": 3.0, "top_k": 8, "scorer": "attribute_posterior",
                                                "num_candidates": 4}


def test_the_recipes_rerank_choice_keeps_a_scorer_only_where_it_beats_every_simpler_option():
    """rerank_choice: a scorer must beat one sample AND the scorers before it by more than max(standard error,
    RERANK_MIN_GAIN) of the mean, without any row falling by more than its own standard error."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    keys = ["a", "b"]

    def choose(one, likelihood, gain, samples=400):
        reads = {"one": dict(zip(keys, one)), "likelihood": dict(zip(keys, likelihood)),
                 "condition_gain": dict(zip(keys, gain))}
        return recipe.rerank_choice(reads, keys, samples, keys)[0]

    # standard error of the mean at 400 conditions, p = 0.5: sqrt(2 * 0.25 / 400) / 2 = 0.018 (< RERANK_MIN_GAIN)
    assert choose((0.5, 0.5), (0.6, 0.6), (0.6, 0.61)) == "likelihood"  # the gain does not beat the likelihood
    assert choose((0.5, 0.5), (0.6, 0.6), (0.7, 0.7)) == "condition_gain"
    assert choose((0.5, 0.5), (0.51, 0.5), (0.58, 0.5)) == "condition_gain"  # the likelihood fails; the gain beats both
    assert choose((0.5, 0.5), (0.5, 0.5), (0.51, 0.52)) == "one"  # less than RERANK_MIN_GAIN
    # the mean rises by 0.06 but row b falls by 0.06, more than its standard error (0.025): not kept
    assert choose((0.5, 0.5), (0.5, 0.5), (0.68, 0.44)) == "one"
    assert choose((0.5, 0.5), (0.5, 0.5), (0.62, 0.49)) == "condition_gain"  # b falls 0.01, within its error


def test_the_recipes_vqgan_decoder_stage_changes_only_the_decoder_and_assemble_ships_it(tmp_path):
    """The vqgan_decoder stage: reads work/vqgan, writes work/vqgan_decoder with the same encoder and codebook (every
    token keeps its index) and a changed decoder; --vqgan-decoder-steps 0 skips it."""
    import importlib.util
    from pathlib import Path

    import torch

    from nuwa_hf.models.vqgan import NuwaVQGAN

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    torch.manual_seed(0)
    NuwaVQGAN.tiny(image_size=16, grid_size=4, codebook_size=16, base_channels=16, max_channels=32).save_pretrained(
        tmp_path / "vqgan")
    args = recipe.parse_args(["--work-dir", str(tmp_path), "--image-size", "16", "--num-frames", "3",
                              "--vqgan-decoder-steps", "3", "--vqgan-decoder-samples", "20"])
    report = recipe.stage_vqgan_decoder(args, tmp_path)
    assert report["steps"] == 3 and report["frames"] == 2 * (20 + 2 * 3) and 0 < report["shape_pixels"] < 0.5
    before = NuwaVQGAN.from_pretrained(tmp_path / "vqgan").state_dict()
    after = NuwaVQGAN.from_pretrained(tmp_path / "vqgan_decoder").state_dict()
    changed = {name for name in after if not torch.equal(after[name], before[name])}
    assert changed and all(name.startswith(("decoder.", "post_quant_conv.")) for name in changed)
    skipped = recipe.parse_args(["--work-dir", str(tmp_path / "other"), "--vqgan-decoder-steps", "0"])
    assert recipe.stage_vqgan_decoder(skipped, tmp_path / "other") == {"skipped": "--vqgan-decoder-steps 0"}


def test_the_recipe_passes_bf16_to_its_nuwa_runs_as_asked(tmp_path, monkeypatch):
    """--nuwa-bf16 on / off decide; auto follows the chip (bf16_is_fast), and the flag parses as bf16 autocast."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "examples" / "train_default_checkpoint.py"
    spec = importlib.util.spec_from_file_location("train_default_checkpoint", path)
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)

    def bf16_of(*flags):
        argv = recipe.nuwa_argv(recipe.parse_args(["--work-dir", str(tmp_path), *flags]), tmp_path)
        args, make_training_arguments = parse_args(argv)
        return args.bf16

    assert bf16_of("--nuwa-bf16", "on") is True and bf16_of("--nuwa-bf16", "off") is False
    monkeypatch.setattr(recipe, "bf16_is_fast", lambda: True)
    assert bf16_of() is True
    monkeypatch.setattr(recipe, "bf16_is_fast", lambda: False)
    assert bf16_of() is False

"""The launch configurations shipped in examples/configs/: what can be checked without GPUs."""

import json
from pathlib import Path

import yaml
from accelerate.utils import FullyShardedDataParallelPlugin

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.training import nuwa_training_arguments

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_fsdp_config_builds_the_plugin_and_names_real_layers(tmp_path):
    args = nuwa_training_arguments(str(tmp_path), max_steps=1, fsdp=True, fsdp_config=str(CONFIGS / "fsdp_paper.json"))
    plugin = FullyShardedDataParallelPlugin(**args.fsdp_plugin_args)
    assert plugin.fsdp_version == 2
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)  # checkpoints stay safetensors model folders
    model = NuwaForConditionalGeneration(NuwaConfig.tiny())
    classes = {type(module).__name__ for module in model.modules()}
    wrapped = json.loads((CONFIGS / "fsdp_paper.json").read_text())["transformer_layer_cls_to_wrap"]
    assert set(wrapped) <= classes and set(wrapped) <= set(model._no_split_modules)


def test_accelerate_ddp_config_launches_several_processes_not_the_cpu_trap():
    config = yaml.safe_load((CONFIGS / "accelerate_ddp.yaml").read_text())
    assert config["distributed_type"] == "MULTI_GPU" and config["num_processes"] >= 2
    assert config.get("use_cpu") is not True  # `--cpu` silently runs one process


def test_deepspeed_config_leaves_the_recipe_to_the_trainer():
    config = json.loads((CONFIGS / "deepspeed_zero3_paper.json").read_text())
    assert config["zero_optimization"]["stage"] == 3
    assert config["optimizer"]["params"]["lr"] == "auto" and config["train_micro_batch_size_per_gpu"] == "auto"
    assert config["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True


"""examples/configs/accelerate_fsdp2.yaml read by accelerate's own launcher code, and the --fsdp2 flag's guards."""

from pathlib import Path

import pytest

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration
from nuwa_hf.training import build_parser
from nuwa_hf.training.main import _check_args

CONFIGS = Path(__file__).resolve().parents[2] / "examples" / "configs"


def test_accelerate_fsdp2_config_becomes_an_fsdp2_plugin_over_real_layers(monkeypatch):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(["--config_file", str(CONFIGS / "accelerate_fsdp2.yaml"), "train.py"])
    _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)  # what `accelerate launch` hands to every process
    assert env["ACCELERATE_USE_FSDP"] == "true" and args.num_processes >= 2
    for key, value in env.items():
        if key.startswith("FSDP_"):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2 and plugin.reshard_after_forward is True
    model = NuwaForConditionalGeneration(NuwaConfig.tiny())
    classes = {type(module).__name__ for module in model.modules()}
    assert set(plugin.transformer_cls_names_to_wrap) == {"NuwaEncoderLayer", "NuwaDecoderLayer"} <= classes


@pytest.mark.parametrize("extra, message", [
    (["--fsdp2", "--fsdp-config", "x.json"], "--fsdp2 shards the model itself"),
    (["--fsdp2", "--deepspeed", "x.json"], "--fsdp2 shards the model itself"),
    (["--activation-checkpointing"], "needs --fsdp2"),
])
def test_fsdp2_flag_refuses_conflicting_settings(extra, message):
    args = build_parser().parse_args(["--output-dir", "x", *extra])
    with pytest.raises(ValueError, match=message):
        _check_args(args)

"""Issue 18 row 10: a saved model folder carries its pipelines' code, so transformers.pipeline(task, model=folder,
trust_remote_code=True) works in a process that cannot import nuwa_hf, and gives what the installed package gives.
With nuwa_hf installed, the same folder needs no trust_remote_code (the registered pipelines serve)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf.models.nuwa.remote_code import PIPELINE_CLASSES, custom_pipelines
from nuwa_hf.tasks import TASKS
from support.without_nuwa_hf import BLOCK_NUWA_HF

SIZE = 16

REMOTE_PIPELINES = BLOCK_NUWA_HF + """
import json, sys
import numpy as np
from transformers import pipeline
image = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
sketch = np.zeros((16, 16), dtype=np.int64); sketch[8:] = 2
calls = {"nuwa-text-to-image": (("a red 3",), {}), "nuwa-image-completion": ((image,), {"mask": "top half"}),
         "nuwa-sketch-to-image": ((sketch,), {})}
out = {}
for task, (args, kwargs) in calls.items():
    pipe = pipeline(task, model=sys.argv[1], trust_remote_code=True)
    pipe.set_progress_bar_config(disable=True)
    tokens = pipe(*args, seed=0, output_type="tokens", **kwargs)
    pictures = pipe([args[0], args[0]], seed=0, batch_size=2, **kwargs)
    out[task] = {"module": type(pipe).__module__, "tokens": tokens.tolist(), "sizes": [list(p.size) for p in pictures]}
assert not any(name.startswith("nuwa_hf") for name in sys.modules)
print(json.dumps(out))
"""


def test_the_folder_names_a_pipeline_for_every_task(tiny_model_folder):
    config = json.loads(open(os.path.join(tiny_model_folder, "config.json")).read())
    assert config["custom_pipelines"] == custom_pipelines()
    assert PIPELINE_CLASSES == {task.name: task.pipeline_class for task in TASKS}, "the task table and the copy agree"
    for task in config["custom_pipelines"].values():
        module = task["impl"].split(".")[0]
        assert os.path.isfile(os.path.join(tiny_model_folder, module + ".py")), module
    # With nuwa_hf installed the registered pipelines serve, without trust_remote_code.
    assert type(pipeline("nuwa-text-to-image", model=tiny_model_folder)).__module__.startswith("nuwa_hf.")


@pytest.mark.slow
def test_pipelines_load_from_the_folder_where_nuwa_hf_is_not_installed(tiny_model_folder, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules"), "PYTHONPATH": ""}
    result = subprocess.run([sys.executable, "-c", REMOTE_PIPELINES, tiny_model_folder], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    sketch = np.zeros((SIZE, SIZE), dtype=np.int64)
    sketch[8:] = 2
    local_args = {"nuwa-text-to-image": (("a red 3",), {}), "nuwa-image-completion": ((image,), {"mask": "top half"}),
                  "nuwa-sketch-to-image": ((sketch,), {})}
    for task, (args, kwargs) in local_args.items():
        assert remote[task]["module"].startswith("transformers_modules."), "the folder's own code ran"
        local = pipeline(task, model=tiny_model_folder)
        local.set_progress_bar_config(disable=True)
        expected = local(*args, seed=0, output_type="tokens", **kwargs)
        assert torch.equal(torch.tensor(remote[task]["tokens"]), expected), task
        assert remote[task]["sizes"] == [[SIZE, SIZE], [SIZE, SIZE]]

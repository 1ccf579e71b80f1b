"""Run in a subprocess by test_hub_end_to_end.py, with HF_ENDPOINT / HF_HUB_OFFLINE / HF_HOME set BEFORE any import
(huggingface_hub reads them at import time). Writes what it measured to an .npz file the test compares.

    python hub_client.py online  WORK_DIR REPO_ID PARTS_REPO_ID CODE_REPO_ID   push the code repo, build the tiny
                                                                 folder, push it (pointing at the code), load local + Hub
    python hub_client.py remote  WORK_DIR REPO_ID PARTS_REPO_ID CODE_REPO_ID   nuwa_hf blocked: trust_remote_code
    python hub_client.py offline WORK_DIR REPO_ID PARTS_REPO_ID CODE_REPO_ID   server stopped: the cache only
"""

import hashlib
import importlib.abc
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the `support` package

PROMPT = "a red 3 in the top left"


def state_hash(module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def greedy_tokens(model):
    import torch

    return model.generate(input_ids=torch.tensor([[1, 2, 3]]), visual_grid=(2, 3, 3), do_sample=False).numpy()


def measure(source: str, label: str, results: dict) -> None:
    """Everything a user loads from ``source`` (folder or repo id): model (+ its VQ-GANs), processor, pipeline."""
    import numpy as np
    import transformers
    from transformers import AutoModelForSeq2SeqLM

    from nuwa_hf import NuwaProcessor

    model = AutoModelForSeq2SeqLM.from_pretrained(source).eval()
    results[f"{label}/model_class"] = np.array(type(model).__name__)
    results[f"{label}/model_hash"] = np.array(state_hash(model))
    results[f"{label}/greedy"] = greedy_tokens(model)

    assert model.vqgan is not None and model.sketch_vqgan is not None, f"{source}: VQ-GANs missing from the model"
    results[f"{label}/vqgan_hash"] = np.array(state_hash(model.vqgan))
    results[f"{label}/seg_vqgan_hash"] = np.array(state_hash(model.sketch_vqgan))
    processor = NuwaProcessor.from_pretrained(source)
    rng = np.random.default_rng(0)
    image = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    sketch = rng.integers(0, 8, size=(16, 16))
    encoded = processor(text=[PROMPT], images=[image], sketches=[sketch], return_tensors="pt")
    results[f"{label}/processor_input_ids"] = encoded["input_ids"].numpy()
    results[f"{label}/processor_visual_tokens"] = model.encode_images(encoded["pixel_values"]).numpy()
    results[f"{label}/processor_sketch_tokens"] = model.encode_sketches(encoded["sketch_maps"]).numpy()

    generate = transformers.pipeline("nuwa-text-to-image", model=source)
    results[f"{label}/pipeline_image"] = np.asarray(generate(PROMPT, seed=0, output_type="np"))


def online(work: Path, repo_id: str, parts_repo_id: str, code_repo_id: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    import nuwa_hf  # noqa: F401  (registers NUWA)
    from nuwa_hf.hub import download_model_folder, list_model_files, push_code, push_model_folder
    from support.tiny_model_folder import save_untrained_tiny_model

    code_commit = push_code(code_repo_id)  # the remote code of this version, built from the installed package
    folder = save_untrained_tiny_model(work / "tiny", image_size=16, grid_size=4, max_frames=3, seed=0)
    (folder / "README.md").write_text("---\nlicense: mit\nlibrary_name: nuwa-hf\n---\n# tiny NUWA\n")
    commit = push_model_folder(folder, repo_id, commit_message="tiny NUWA, whole folder", remote_code=code_repo_id)
    results = {"commit_url": np.array(str(commit)), "code_commit_url": np.array(str(code_commit))}

    measure(str(folder), "local", results)
    measure(repo_id, "hub", results)
    snapshot = download_model_folder(repo_id)
    results["hub/snapshot_files"] = np.array(list_model_files(snapshot))
    results["local/files"] = np.array(list_model_files(folder))

    # The transformers way, in two parts: the model (with its VQ-GANs), then the processor.
    from transformers import AutoModelForSeq2SeqLM

    from nuwa_hf import NuwaProcessor

    AutoModelForSeq2SeqLM.from_pretrained(folder).push_to_hub(parts_repo_id, commit_message="model part",
                                                              remote_code=code_repo_id)
    NuwaProcessor.from_pretrained(folder).push_to_hub(parts_repo_id, commit_message="processor part",
                                                      remote_code=code_repo_id)
    measure(parts_repo_id, "parts", results)
    parts_snapshot = download_model_folder(parts_repo_id)
    results["parts/snapshot_files"] = np.array(list_model_files(parts_snapshot))
    results["parts/card"] = np.array((parts_snapshot / "README.md").read_text())
    np.savez(work / "online.npz", **results)


class BlockNuwaHf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "nuwa_hf" or name.startswith("nuwa_hf."):
            raise ImportError("nuwa_hf is blocked in this check")


def measure_remote_code(repo_id: str, label: str, results: dict) -> None:
    """Without nuwa_hf (blocked): the model, processor and a pipeline through the code repository that the model
    repo's config.json names (``auto_map`` / ``custom_pipelines`` "org/code--v.../module.Class")."""
    import numpy as np
    import transformers
    from transformers import AutoModelForSeq2SeqLM, AutoProcessor

    blocker = BlockNuwaHf()
    sys.meta_path.insert(0, blocker)
    try:
        model = AutoModelForSeq2SeqLM.from_pretrained(repo_id, trust_remote_code=True).eval()
        results[f"{label}/model_module"] = np.array(type(model).__module__)
        results[f"{label}/model_hash"] = np.array(state_hash(model))
        results[f"{label}/greedy"] = greedy_tokens(model)
        processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)
        results[f"{label}/processor_input_ids"] = processor(text=[PROMPT], return_tensors="pt")["input_ids"].numpy()
        generate = transformers.pipeline("nuwa-text-to-image", model=repo_id, trust_remote_code=True)
        generate.set_progress_bar_config(disable=True)
        results[f"{label}/pipeline_module"] = np.array(type(generate).__module__)
        results[f"{label}/pipeline_image"] = np.asarray(generate(PROMPT, seed=0, output_type="np"))
        assert not any(name.split(".")[0] == "nuwa_hf" for name in sys.modules), "nuwa_hf was imported"
    finally:
        sys.meta_path.remove(blocker)


def remote(work: Path, repo_id: str, parts_repo_id: str, code_repo_id: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    results = {}
    measure_remote_code(repo_id, "remote_code", results)
    measure_remote_code(parts_repo_id, "remote_code_parts", results)
    np.savez(work / "remote.npz", **results)


def offline(work: Path, repo_id: str, parts_repo_id: str, code_repo_id: str) -> None:
    import numpy as np
    import torch

    torch.set_num_threads(1)
    results = {}
    # 1. Without nuwa_hf: the code repository's code, from the cache.
    measure_remote_code(repo_id, "remote_code", results)
    from transformers import AutoModelForSeq2SeqLM

    # 2. With nuwa_hf: the same loads as online, from the cache only.
    import nuwa_hf  # noqa: F401
    from nuwa_hf.hub import download_model_folder, list_model_files

    measure(repo_id, "offline", results)
    results["offline/snapshot_files"] = np.array(list_model_files(download_model_folder(repo_id)))
    measure(parts_repo_id, "offline_parts", results)

    # 3. A repo that was never downloaded cannot come from anywhere.
    try:
        AutoModelForSeq2SeqLM.from_pretrained("org/never-downloaded")
    except OSError as error:
        results["never_downloaded_error"] = np.array(f"{type(error).__name__}: {error}")
    np.savez(work / "offline.npz", **results)


if __name__ == "__main__":
    mode, work, repo, parts, code = sys.argv[1], Path(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    {"online": online, "remote": remote, "offline": offline}[mode](work, repo, parts, code)
    print(json.dumps({"ok": mode}))

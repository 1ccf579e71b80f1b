"""Hostile and damaged model folders, second trial (docs/reliability.md, "Folders from strangers, second trial"):
absurd or mistyped config.json values, safetensors headers that lie, integer or non-finite weights, weight files that
lack the model's tensors, hostile checksum manifests and generation_config.json files. Each is refused by
``from_pretrained`` (and so by ``pipeline()`` and the CLI) with a NuwaModelFolderError naming the file, the problem and
the fix, before any module is built where the config is at fault (no allocation, no deep torch error)."""

import json
import resource
import shutil
import struct
import time

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import pipeline

import nuwa_hf  # noqa: F401
from nuwa_hf import NuwaConfig
from nuwa_hf.cli import main as cli_main
from nuwa_hf.models.nuwa import NuwaForConditionalGeneration
from nuwa_hf.models.nuwa.loading_nuwa import NuwaModelFolderError
from nuwa_hf.pipelines import NuwaModelFolderError as PipelineFolderError


def copy_of(tiny_model_folder, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_folder, folder)
    return folder


def edit_json(folder, name, change):
    path = folder / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def config_edit(**values):
    return lambda folder: edit_json(folder, "config.json", lambda config: config.update(values))


def write_header(folder, header, data=b""):
    text = json.dumps(header).encode()
    (folder / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + data)
    (folder / "checksums.json").unlink()


def rewrite_weights(folder, change, manifest=False):
    path = folder / "model.safetensors"
    save_file(change(load_file(path)), path, metadata={"format": "pt"})
    if manifest:  # as a damaged run's own save would: the checksum matches the bad weights
        from nuwa_hf.models.nuwa.loading_nuwa import write_checksum_manifest

        write_checksum_manifest(folder)
    else:
        (folder / "checksums.json").unlink()


def nan_head(weights):
    weights["lm_head.weight"] = torch.full_like(weights["lm_head.weight"], float("nan"))
    return weights


def one_inf(weights):
    name = next(name for name in weights if name.startswith("model.vqgan.decoder.conv_out.weight"))
    weights[name].view(-1)[0] = float("inf")
    return weights


def as_int8(weights):
    return {name: (tensor * 100).to(torch.int8) for name, tensor in weights.items()}


def without_one_tensor(weights):
    return {name: tensor for name, tensor in weights.items() if name != "model.decoder.layers.0.ffn.fc1.bias"}


def manifest(files, algorithm="sha256"):
    return lambda folder: (folder / "checksums.json").write_text(json.dumps({"algorithm": algorithm, "files": files}))


def generation_edit(change):
    return lambda folder: edit_json(folder, "generation_config.json", change)


def task_entry(entry):
    return generation_edit(lambda config: config.setdefault("task_sampling", {}).__setitem__("nuwa-text-to-image", entry))


CASES = {
    # config.json: absurd, zero, negative and mistyped sizes, refused before transformers builds a module
    "hidden_size 10**9": (config_edit(hidden_size=10**9), r"config.json: hidden_size must be a whole number in \[1, "),
    "text vocab 10**12": (config_edit(text_vocab_size=10**12), "text_vocab_size must be a whole number"),
    "10**6 decoder layers": (config_edit(decoder_layers=10**6), "decoder_layers must be a whole number in"),
    "zero heads": (config_edit(num_attention_heads=0), "num_attention_heads must be a whole number"),
    "negative layers": (config_edit(decoder_layers=-1), "decoder_layers must be a whole number"),
    "size as a string": (config_edit(hidden_size="128"), r"hidden_size must be .* got '128' \(a str\)"),
    "size as a bool": (config_edit(num_attention_heads=True), r"got True \(a bool\)"),
    "grid as a string": (config_edit(max_visual_grid="abc"), "max_visual_grid must be a .* triple of positive ints"),
    "dropout NaN": (config_edit(dropout=float("nan")), r"dropout must be a probability in \[0, 1\), got nan"),
    "negative layer_norm_eps": (config_edit(layer_norm_eps=-1), "layer_norm_eps must be a finite number > 0"),
    "unknown activation": (config_edit(hidden_act="evil"), "hidden_act must name one of transformers' activations"),
    "pad id outside the vocabulary": (config_edit(text_pad_token_id=10**6), "text_pad_token_id must be a text id"),
    "VQ-GAN config as a list": (config_edit(vqgan_config=[1, 2]), "vqgan_config must be the VQ-GAN's config"),
    "layers the weights lack": (config_edit(decoder_layers=5),
                                r"declares decoder_layers=5, but the weights hold \d+ decoder layers"),
    "config nested 100000 deep": (lambda f: (f / "config.json").write_text("[" * 100000 + "]" * 100000),
                                  "nests arrays or objects too deeply"),
    # model.safetensors headers that lie
    "header claims a 10**18-element tensor": (
        lambda f: write_header(f, {"lm_head.weight": {"dtype": "F32", "shape": [10**9, 10**9],
                                                      "data_offsets": [0, 8]}}, b"\0" * 8),
        "would need 4,000,000,000,000,000,000 bytes, but its data offsets span 8"),
    "header is a list": (lambda f: write_header(f, [1, 2]), "its header is a JSON list, not an object"),
    "header entry without offsets": (lambda f: write_header(f, {"a": {"dtype": "F32", "shape": [2]}}),
                                     "entry for tensor 'a' is not a dtype, shape and data offsets"),
    "unknown dtype": (lambda f: write_header(f, {"a": {"dtype": "EVIL", "shape": [2], "data_offsets": [0, 8]}},
                                             b"\0" * 8), "entry for tensor 'a' is not a dtype"),
    "overlapping tensors": (lambda f: write_header(f, {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}},
                                                   b"\0" * 8), "starts at byte 0 of the data, not 8"),
    "no tensors at all": (lambda f: write_header(f, {}), r"lack \d+ of the model's tensors"),
    # weights: right names, wrong content
    "a tensor missing": (lambda f: rewrite_weights(f, without_one_tensor),
                         r"lack 1 of the model's tensors \(model.decoder.layers.0.ffn.fc1.bias\)"),
    "int8 weights": (lambda f: rewrite_weights(f, as_int8), r"stores \d+ weight\(s\) as integers or booleans"),
    "NaN head (manifest rewritten)": (lambda f: rewrite_weights(f, nan_head, manifest=True),
                                      r"hold NaN or infinite values in 1 tensor\(s\): lm_head.weight"),
    "one inf in the VQ-GAN": (lambda f: rewrite_weights(f, one_inf),
                              r"model.vqgan.decoder.conv_out.weight \(1 of"),
    # checksums.json
    "manifest naming a file outside": (manifest({"../../../../etc/passwd": "00"}),
                                       "names '../../../../etc/passwd', which is not a file of this folder"),
    "manifest naming /dev/zero": (manifest({"/dev/zero": "00"}), "names '/dev/zero', which is not a file"),
    "manifest files as a list": (manifest(["model.safetensors"]), "'files' must map file names to sha256"),
    "manifest of md5 digests": (manifest({"model.safetensors": "0" * 32}, algorithm="md5"),
                                "records 'md5' digests; nuwa-hf checks sha256 only"),
    # generation_config.json
    "generation config not JSON": (lambda f: (f / "generation_config.json").write_text("{bad"),
                                   "generation_config.json is not valid JSON"),
    "generation config a list": (lambda f: (f / "generation_config.json").write_text("[]"),
                                 "generation_config.json holds a JSON list, not an object"),
    "negative top_k": (generation_edit(lambda c: c.update(top_k=-5)), "top_k must be an integer >= 0"),
    "do_sample 'yes'": (generation_edit(lambda c: c.update(do_sample="yes")), "do_sample must be True or False"),
    "10**6 return sequences": (generation_edit(lambda c: c.update(num_return_sequences=10**6)),
                               r"num_return_sequences must be an integer in \[1, 1024\]"),
    "bos id outside the vocabulary": (generation_edit(lambda c: c.update(decoder_start_token_id=10**6)),
                                      "decoder_start_token_id is 1000000, but this model's visual <bos>"),
    "task_sampling a list": (generation_edit(lambda c: c.update(task_sampling=[1])),
                             "task_sampling must map task names to settings"),
    "task_sampling entry with a typo": (task_entry({"tok_k": 8}), r"unknown setting\(s\) \['tok_k'\]"),
    "task_sampling guidance NaN": (task_entry({"guidance_scale": float("nan")}),
                                   r"task_sampling\['nuwa-text-to-image'\]: guidance_scale must be"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_folders_are_refused_with_the_file_and_the_fix(tiny_model_folder, tmp_path, case):
    damage, message = CASES[case]
    folder = copy_of(tiny_model_folder, tmp_path)
    damage(folder)
    started = time.perf_counter()
    with pytest.raises(NuwaModelFolderError, match=message) as caught:
        NuwaForConditionalGeneration.from_pretrained(str(folder))
    assert str(folder) in str(caught.value)
    assert time.perf_counter() - started < 10


@pytest.mark.parametrize("case", ["10**6 decoder layers", "int8 weights", "NaN head (manifest rewritten)",
                                  "negative top_k", "no tensors at all"])
def test_the_pipeline_and_the_cli_name_them_too(tiny_model_folder, tmp_path, capsys, case):
    damage, message = CASES[case]
    folder = copy_of(tiny_model_folder, tmp_path)
    damage(folder)
    # (pipeline() reads config.json with AutoConfig before the model class checks the folder: a config value is
    # refused there as a ValueError with the same words)
    with pytest.raises(ValueError if case.endswith("layers") else PipelineFolderError, match=message):
        pipeline("nuwa-text-to-image", model=str(folder))
    code = cli_main(["generate", "--task", "T2I", "--model", str(folder), "--prompt", "a red 3",
                     "--out", str(tmp_path / "out"), "--quiet"])
    stderr = capsys.readouterr().err
    assert code == 3 and "Traceback" not in stderr and "nuwa-hf: error:" in stderr


def test_an_absurd_config_is_refused_before_anything_is_allocated(tiny_model_folder, tmp_path):
    """hidden_size 10**9 would need petabytes: refused from config.json alone, with memory growth far below a GB."""
    folder = copy_of(tiny_model_folder, tmp_path)
    config_edit(hidden_size=10**9, intermediate_size=10**9, decoder_layers=1000)(folder)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(NuwaModelFolderError, match="hidden_size must be a whole number"):
        NuwaForConditionalGeneration.from_pretrained(str(folder))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # kB


def test_sizes_within_each_bound_but_absurd_together_are_refused():
    with pytest.raises(ValueError, match=r"sizes describe a model of about .* parameters, past the limit"):
        NuwaConfig(hidden_size=131072, num_attention_heads=1024, intermediate_size=1_048_576, decoder_layers=1024)
    assert NuwaConfig(hidden_size=128.0, num_attention_heads=4).hidden_size == 128  # a whole float is an int


def test_extra_pickle_files_beside_the_weights_are_never_opened(tiny_model_folder, tmp_path):
    """pytorch_model.bin, .pt, .pkl, .ckpt, optimizer / rng files beside model.safetensors: unpickling any of them would
    write a marker file; loading and generating never do."""
    import pickle

    marker = tmp_path / "unpickled"

    class Hostile:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = copy_of(tiny_model_folder, tmp_path)
    for name in ("pytorch_model.bin", "model.pt", "weights.pkl", "model.ckpt", "optimizer.pt", "rng_state.pth"):
        (folder / name).write_bytes(pickle.dumps(Hostile()))
    pipe = pipeline("nuwa-text-to-image", model=str(folder))
    pipe.set_progress_bar_config(disable=True)
    pipe("a red 3", seed=0)
    assert not marker.exists()


def test_a_sampling_step_with_non_finite_scores_names_the_cause(tiny_model_folder):
    """A logits processor that makes the scores NaN, and NaN logits: the sampler names the cause instead of
    torch.multinomial's 'probability tensor contains either inf, nan or element < 0'."""
    pipe = pipeline("nuwa-text-to-image", model=tiny_model_folder)
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(ValueError, match=r"Cannot sample token \d+: the sampling settings or logits processors"):
        pipe("a red 3", logits_processor=[lambda ids, scores: scores * float("nan")], seed=0)
    model = pipe.model
    with torch.no_grad():
        saved = model.lm_head.weight.clone()
        model.lm_head.weight.fill_(float("nan"))
        try:
            with pytest.raises(ValueError, match=r"model's own scores \(logits\) hold NaN or infinity"):
                pipe("a red 3", seed=0)
        finally:
            model.lm_head.weight.copy_(saved)


def test_a_tokenizer_without_its_vocabulary_is_refused_not_read_as_unknown_words(tiny_model_folder, tmp_path):
    """Without tokenizer.json transformers builds the tokenizer from tokenizer_config.json alone (special tokens only):
    every prompt word would read as unknown and the model would generate from nothing, with no error. The pipeline
    refuses the folder, naming the missing vocabulary and the fix; the intact folder still loads."""
    folder = copy_of(tiny_model_folder, tmp_path)
    assert len(pipeline("nuwa-text-to-image", model=str(folder)).processor.tokenizer) > 10
    (folder / "tokenizer.json").unlink()
    with pytest.raises(PipelineFolderError, match=r"has no vocabulary .*Copy tokenizer.json back"):
        pipeline("nuwa-text-to-image", model=str(folder))


@pytest.mark.parametrize("case", ["tokenizer.json without added_tokens", "image_mean of one channel", "image_std 0",
                                  "model_max_length not a number"])
def test_damaged_processor_files_are_named_not_failed_on_later(tiny_model_folder, tmp_path, case):
    """A tokenizer.json of the wrong structure failed with KeyError 'added_tokens' inside transformers; an image_mean
    of one channel at the first picture's reshape; an image_std of 0 was accepted (pictures divided by 0). Each is
    refused when the pipeline loads, naming the file and the fix."""
    folder = copy_of(tiny_model_folder, tmp_path)
    if case.startswith("tokenizer"):
        edit_json(folder, "tokenizer.json", lambda data: data.pop("added_tokens"))
        expected = r"could not be read from its files .*tokenizer.json.*KeyError.*added_tokens.*Copy them back"
    elif case.startswith("model_max_length"):
        edit_json(folder, "tokenizer_config.json", lambda data: data.update(model_max_length="abc"))
        expected = r"model_max_length 'abc' in tokenizer_config.json: it must be a positive whole number"
    else:
        name, value = ("image_mean", [0.5]) if "mean" in case else ("image_std", [0.5, 0.0, 0.5])
        edit_json(folder, "processor_config.json",
                  lambda data: (data.get("image_processor", data)).update({name: value}))
        expected = rf"`{name}` must be 3 finite .*processor_config.json"
    with pytest.raises(PipelineFolderError, match=expected):
        pipeline("nuwa-text-to-image", model=str(folder))

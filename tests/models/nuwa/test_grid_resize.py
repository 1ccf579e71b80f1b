"""resize_grid_embeddings: a model trained on short clips grows to longer ones without changing what it learnt."""

import pytest
import torch

from nuwa_hf import NuwaConfig, NuwaForConditionalGeneration


def _model():
    torch.manual_seed(0)
    return NuwaForConditionalGeneration(NuwaConfig.tiny(dropout=0.0)).eval()


def test_growing_keeps_the_outputs_on_the_old_grid_and_serves_the_new_one(tmp_path):
    model = _model()
    text, labels = torch.randint(0, 512, (2, 7)), torch.randint(0, 64, (2, 4, 4, 4))
    sketch = torch.randint(0, 32, (2, 4, 4, 4))
    with torch.no_grad():
        before_text = model(input_ids=text, labels=labels).logits
        before_sketch = model(sketch_tokens=sketch, labels=labels).logits
    model.resize_grid_embeddings(max_visual_grid=(6, 8, 8), max_sketch_grid=(6, 8, 8))
    assert model.config.max_visual_grid == [6, 8, 8] and model.config.max_sketch_grid == [6, 8, 8]
    assert model.model.decoder.embedding.time.weight.shape[0] == 6
    assert model.model.encoder.sketch_embedding.time.weight.shape[0] == 6
    # the new frame rows start as the last learned one
    time = model.model.decoder.embedding.time.weight
    assert torch.equal(time[4], time[3]) and torch.equal(time[5], time[3])
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=text, labels=labels).logits, before_text, atol=0, rtol=0)
        torch.testing.assert_close(model(sketch_tokens=sketch, labels=labels).logits, before_sketch, atol=0, rtol=0)
        long_labels = torch.randint(0, 64, (2, 6, 4, 4))
        assert model(input_ids=text, labels=long_labels).logits.shape == (2, 96, 64)
    # generation over the new frames, fast step and module path agree
    fast = model.generate(input_ids=text[:1], visual_grid=(6, 2, 2), do_sample=False)
    slow = model.generate(input_ids=text[:1], visual_grid=(6, 2, 2), do_sample=False, fast_decoding=False)
    assert torch.equal(fast, slow) and fast.shape[-1] >= 24
    # and it round-trips through save_pretrained / from_pretrained
    model.save_pretrained(tmp_path)
    loaded = NuwaForConditionalGeneration.from_pretrained(tmp_path).eval()
    assert loaded.config.max_visual_grid == [6, 8, 8]
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=text, labels=long_labels).logits,
                                   model(input_ids=text, labels=long_labels).logits)


def test_shrinking_is_refused_with_the_sizes():
    model = _model()
    with pytest.raises(ValueError, match=r"can only grow: have \(4, 8, 8\), asked for \(2, 8, 8\)"):
        model.resize_grid_embeddings(max_visual_grid=(2, 8, 8))
    assert model.config.max_visual_grid == [4, 8, 8]

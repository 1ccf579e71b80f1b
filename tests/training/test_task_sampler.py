"""TaskGroupedBatchSampler: one task per batch, reproducible epochs, weights, blocks for several processes, and the
condition-dropout decisions it makes."""

from collections import Counter

import pytest

from nuwa_hf.training import TaskGroupedBatchSampler, TaskMixtureDataset, parse_tasks


def _epoch(sampler, epoch):
    sampler.set_epoch(epoch)
    return list(sampler)


def test_every_batch_holds_one_task_and_each_example_appears_at_most_once(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    sampler = TaskGroupedBatchSampler(mixture, batch_size=4, seed=3)
    batches = _epoch(sampler, 0)
    assert len(batches) == len(sampler) == 24 // 4 + 12 // 4 + 16 // 4
    seen = []
    for batch in batches:
        tasks = {mixture[i]["task"] for i, _ in batch}
        assert len(tasks) == 1 and len(batch) == 4
        seen.extend(i for i, _ in batch)
    assert len(seen) == len(set(seen)) == len(mixture)
    # Tasks are interleaved, not run one after another.
    order = [mixture.locate(batch[0][0])[0] for batch in batches]
    assert order != sorted(order)


def test_epochs_differ_but_are_reproducible(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    a = TaskGroupedBatchSampler(mixture, batch_size=4, seed=3)
    b = TaskGroupedBatchSampler(mixture, batch_size=4, seed=3)
    assert _epoch(a, 1) == _epoch(b, 1)
    assert _epoch(a, 0) != _epoch(a, 1)
    assert _epoch(a, 2) == _epoch(b, 2)  # set_epoch, not call history, decides


def test_per_task_batch_sizes_and_weights(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    sampler = TaskGroupedBatchSampler(
        mixture, batch_size={"t2i": 8, "v2v": 2, "s2i": 4}, task_weights={"t2i": 1, "v2v": 3, "s2i": 0}, seed=0
    )
    counts = Counter()
    for batch in _epoch(sampler, 0):
        task = mixture[batch[0][0]]["task"]
        counts[task] += 1
        assert len(batch) == {"t2i": 8, "v2v": 2, "s2i": 4}[task]
    total = 24 // 8 + 12 // 2 + 16 // 4
    assert "s2i" not in counts
    assert counts["v2v"] == round(total * 3 / 4) and counts["t2i"] == round(total / 4)
    assert sampler.batch_size is None  # varying sizes: accelerate must not assume one


def test_blocks_keep_all_processes_on_one_task(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    sampler = TaskGroupedBatchSampler(mixture, batch_size=2, block_size=2, seed=5)
    batches = _epoch(sampler, 0)
    assert len(batches) % 2 == 0
    for first, second in zip(batches[::2], batches[1::2]):
        assert mixture[first[0][0]]["task"] == mixture[second[0][0]]["task"]


def test_condition_dropout_is_per_example_for_text_and_per_batch_for_sketches(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    sampler = TaskGroupedBatchSampler(mixture, batch_size=4, condition_dropout=0.3, seed=0)
    flags = {"t2i": [], "v2v": [], "s2i": []}
    for epoch in range(30):
        for batch in _epoch(sampler, epoch):
            task = mixture[batch[0][0]]["task"]
            drops = [d for _, d in batch]
            flags[task].extend(drops)
            if task == "s2i":
                assert len(set(drops)) == 1
    assert not any(flags["v2v"])
    for task in ("t2i", "s2i"):
        rate = sum(flags[task]) / len(flags[task])
        assert 0.2 < rate < 0.4, (task, rate)


def test_bad_settings_are_explained(token_datasets):
    mixture = TaskMixtureDataset(token_datasets)
    with pytest.raises(ValueError, match="fewer than its batch size"):
        TaskGroupedBatchSampler(mixture, batch_size=13)
    with pytest.raises(ValueError, match="not in the mixture"):
        TaskGroupedBatchSampler(mixture, batch_size=2, task_weights={"t2v": 1})
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        TaskGroupedBatchSampler(mixture, batch_size=2, condition_dropout=1.0)
    with pytest.raises(ValueError, match="unknown task"):
        parse_tasks("t2i,i2i")
    assert parse_tasks("pretraining,s2v") == ("t2i", "t2v", "v2v", "s2v")

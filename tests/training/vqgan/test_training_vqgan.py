"""VQ-GAN training: it learns, its codebook stays in use, it resumes exactly, and it never leaves half checkpoints."""

import contextlib
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
import torch

from nuwa_hf.models.vqgan import NuwaSegVQGAN, NuwaVQGAN
from nuwa_hf.training.vqgan import training_vqgan as training
from nuwa_hf.training.vqgan.losses import PerceptualLoss
from nuwa_hf.data.toy_shapes import ShapesDataset
from nuwa_hf.training.vqgan.training_vqgan import VQGANTrainingArguments, evaluate_vqgan, train_vqgan


# Eight saturated colours; an image is a 4 x 4 board of colour tiles, each tile exactly one 4 x 4-pixel token cell.
PALETTE = torch.tensor(
    [[1, -1, -1], [-1, 1, -1], [-1, -1, 1], [1, 1, -1], [1, -1, 1], [-1, 1, 1], [1, 1, 1], [-1, -1, -1]],
    dtype=torch.float32,
)


def colour_tiles(num_images: int, seed: int = 0) -> torch.Tensor:
    """`(N, 3, 16, 16)` boards of random colour tiles in [-1, 1]."""
    tile_ids = torch.randint(0, len(PALETTE), (num_images, 4, 4), generator=torch.Generator().manual_seed(seed))
    return PALETTE[tile_ids].permute(0, 3, 1, 2).repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)


@contextlib.contextmanager
def one_thread():
    """Tiny convolutions gain little from a second thread, and on a shared machine two threads wait on each other."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def micro_vqgan(**overrides) -> NuwaVQGAN:
    torch.manual_seed(0)
    settings = dict(image_size=16, grid_size=4, codebook_size=16, base_channels=16, max_channels=32)
    settings.update(overrides)
    return NuwaVQGAN.tiny(**settings)


def quiet_args(output_dir, **overrides) -> VQGANTrainingArguments:
    settings = dict(output_dir=str(output_dir), logging_steps=10, eval_steps=0, save_steps=0, show_progress=False)
    settings.update(overrides)
    return VQGANTrainingArguments(**settings)


@pytest.fixture(scope="module")
def trained_on_tiles(tmp_path_factory):
    """A micro VQ-GAN trained for 200 steps on colour tiles, with its before/after evaluations."""
    images = colour_tiles(64)
    dataset = list(images)
    model = micro_vqgan()
    before = evaluate_vqgan(model, dataset)
    output_dir = tmp_path_factory.mktemp("vqgan_tiles")
    with one_thread():
        result = train_vqgan(
            model,
            dataset,
            quiet_args(
                output_dir,
                max_steps=200,
                batch_size=16,
                learning_rate=2e-3,
                disc_start=150,
                restart_every=10,
                restart_until=0.5,
            ),
        )
    return model.eval(), images, before, result


@pytest.mark.slow
def test_training_lowers_reconstruction_error_and_spreads_codebook_usage(trained_on_tiles):
    model, _, before, result = trained_on_tiles
    after = result.final_metrics
    assert after["l1"] < 0.4 * before["l1"], (before["l1"], after["l1"])
    assert after["psnr"] > before["psnr"] + 6.0
    assert after["perplexity"] > before["perplexity"] + 4.0
    assert after["usage"] > before["usage"]
    losses = [record["reconstruction_loss"] for record in result.history]
    assert losses[-1] < 0.5 * losses[0]
    # The adversarial term switched on at step 150 and was logged with its adaptive weight.
    assert any("discriminator_loss" in record and record["adaptive_weight"] > 0 for record in result.history)


@pytest.mark.slow
def test_reencoding_decoded_images_gives_back_the_same_tokens(trained_on_tiles):
    model, images, _, result = trained_on_tiles
    with torch.no_grad():
        tokens = model.encode_to_indices(images)
        again = model.encode_to_indices(model.decode_from_indices(tokens))
    assert float((tokens == again).float().mean()) >= 0.8
    # Not the trivial way (one code for everything): the tokens use most of the codebook.
    assert len(tokens.unique()) >= 12


@pytest.mark.slow
def test_trained_model_is_saved_and_reloads_to_the_same_tokens(trained_on_tiles):
    model, images, _, result = trained_on_tiles
    reloaded = NuwaVQGAN.from_pretrained(result.output_dir)
    assert torch.equal(reloaded.encode_to_indices(images), model.encode_to_indices(images))
    log = json.loads(open(os.path.join(result.output_dir, "training_log.json")).read())
    assert log["eval_history"][-1]["step"] == 200


def test_sketch_vqgan_learns_with_cross_entropy(tmp_path):
    dataset = ShapesDataset(64, image_size=16, kind="sketch")
    torch.manual_seed(0)
    model = NuwaSegVQGAN.tiny(
        num_classes=ShapesDataset.num_classes,
        image_size=16,
        grid_size=4,
        codebook_size=32,
        base_channels=16,
        max_channels=32,
    )
    before = evaluate_vqgan(model, dataset)
    result = train_vqgan(
        model, dataset, quiet_args(tmp_path, max_steps=60, batch_size=16, learning_rate=2e-3, restart_every=10)
    )
    after = result.final_metrics
    assert after["pixel_accuracy"] > before["pixel_accuracy"] + 0.3
    assert after["frequency_weighted_iou"] > before["frequency_weighted_iou"] + 0.3
    assert result.history[-1]["reconstruction_loss"] < 0.6 * result.history[0]["reconstruction_loss"]
    # Sketch training has no discriminator by default (the paper trains VQ-GAN-Seg with cross-entropy).
    assert not any("discriminator_loss" in record for record in result.history)
    assert NuwaSegVQGAN.from_pretrained(tmp_path).num_classes == ShapesDataset.num_classes


def test_dead_codes_are_moved_onto_encoder_outputs():
    restarter = training.DeadCodeRestarter(codebook_size=4, decay=0.5, threshold=0.5)
    restarter.update(torch.tensor([10, 10, 0, 0]))
    assert restarter.dead_codes().tolist() == [False, False, True, True]
    codebook = torch.nn.Parameter(torch.zeros(4, 2))
    optimizer = torch.optim.Adam([codebook])
    codebook.grad = torch.ones_like(codebook)
    optimizer.step()
    latents = torch.tensor([[[[5.0]], [[7.0]]]])  # one latent vector (5, 7) of shape (N=1, D=2, h=1, w=1)

    class SingleProcess:
        num_processes = 1

    moved = restarter.restart(codebook, latents, optimizer, torch.Generator().manual_seed(0), SingleProcess())
    assert moved == 2
    assert codebook[2:].tolist() == [[5.0, 7.0], [5.0, 7.0]]
    assert codebook[:2].abs().sum() > 0  # live codes untouched (Adam moved them away from 0)
    assert optimizer.state[codebook]["exp_avg"][2:].abs().sum() == 0
    assert not restarter.dead_codes().any()


def test_resuming_from_a_checkpoint_reproduces_the_uninterrupted_run(tmp_path, monkeypatch):
    dataset = list(colour_tiles(16, seed=3))
    common = dict(max_steps=6, batch_size=4, learning_rate=1e-3, disc_start=2, restart_every=2, logging_steps=1)

    straight = micro_vqgan()
    train_vqgan(straight, dataset, quiet_args(tmp_path / "straight", **common))

    # Crash in step 5 (the restarter sees one code histogram per step), after checkpoint-4 was written.
    original_update = training.DeadCodeRestarter.update
    calls = []

    def crash_in_step_five(self, counts):
        calls.append(1)
        if len(calls) == 5:
            raise RuntimeError("simulated crash")
        original_update(self, counts)

    monkeypatch.setattr(training.DeadCodeRestarter, "update", crash_in_step_five)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_vqgan(
            micro_vqgan(), dataset, quiet_args(tmp_path / "resumed", save_steps=2, save_total_limit=1, **common)
        )
    monkeypatch.setattr(training.DeadCodeRestarter, "update", original_update)
    checkpoints = sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-4"], "save_total_limit=1 keeps only the newest checkpoint"

    resumed = micro_vqgan()
    result = train_vqgan(resumed, dataset, quiet_args(tmp_path / "resumed", resume_from_checkpoint="latest", **common))
    assert [record["step"] for record in result.history] == [1, 2, 3, 4, 5, 6]
    for (name, expected), actual in zip(straight.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5, msg=name)


def test_a_crash_while_saving_leaves_no_checkpoint_behind(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(training, "save_optimizer_state", crash)
    with pytest.raises(RuntimeError, match="disk full"):
        train_vqgan(
            micro_vqgan(), list(colour_tiles(8)), quiet_args(tmp_path, max_steps=3, batch_size=4, save_steps=2)
        )
    assert list(tmp_path.iterdir()) == [], "neither a checkpoint-2 folder nor a temporary folder may remain"


def test_resume_rejects_a_model_of_another_shape(tmp_path):
    dataset = list(colour_tiles(8))
    train_vqgan(micro_vqgan(), dataset, quiet_args(tmp_path, max_steps=2, batch_size=4, save_steps=1, disc_weight=0))
    with pytest.raises(ValueError, match="same configuration"):
        train_vqgan(
            micro_vqgan(codebook_size=32),
            dataset,
            quiet_args(tmp_path, max_steps=3, batch_size=4, disc_weight=0, resume_from_checkpoint="latest"),
        )


def test_bad_training_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_vqgan(micro_vqgan(), list(colour_tiles(3)), quiet_args(tmp_path, max_steps=1, batch_size=4))
    with pytest.raises(ValueError, match="channels"):
        train_vqgan(micro_vqgan(), [torch.zeros(4, 16, 16)] * 8, quiet_args(tmp_path, max_steps=1, batch_size=4))
    with pytest.raises(ValueError, match="reconstruction_loss"):
        quiet_args(tmp_path, reconstruction_loss="l3")
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train_vqgan(
            micro_vqgan(),
            list(colour_tiles(8)),
            quiet_args(tmp_path, max_steps=1, batch_size=4, resume_from_checkpoint="latest"),
        )


def test_training_with_a_perceptual_loss_logs_it(tmp_path):
    torch.manual_seed(0)
    backbone = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3))
    perceptual = PerceptualLoss(backbone)
    result = train_vqgan(
        micro_vqgan(),
        list(colour_tiles(8)),
        quiet_args(tmp_path, max_steps=2, batch_size=4, logging_steps=1, disc_weight=0),
        perceptual_loss=perceptual,
    )
    assert all(record["perceptual_loss"] > 0 for record in result.history)
    assert all(p.grad is None for p in backbone.parameters())
    with pytest.raises(ValueError, match="cross-entropy"):
        seg = NuwaSegVQGAN.tiny(num_classes=4, image_size=16, grid_size=4, base_channels=16, max_channels=32)
        train_vqgan(
            seg,
            [torch.zeros(16, 16, dtype=torch.long)] * 4,
            quiet_args(tmp_path, max_steps=1, batch_size=4),
            perceptual_loss=perceptual,
        )


def test_foreground_weight_emphasises_sparse_strokes_and_leaves_full_pictures_alone():
    from nuwa_hf.training.vqgan.training_vqgan import pixel_reconstruction_loss

    dark = -torch.ones(1, 3, 8, 8)
    strokes = dark.clone()
    strokes[:, 0, 2:4, 2:4] = 1.0  # a red 2x2 stroke: 4 of 64 pixels
    missed = dark.clone()  # a reconstruction that lost the stroke entirely
    plain = pixel_reconstruction_loss(missed, strokes, "l1")
    weighted = pixel_reconstruction_loss(missed, strokes, "l1", foreground_weight=10.0)
    assert plain == pytest.approx(2.0 * 4 / (64 * 3))
    # the stroke's 4 pixels weigh 11 against the 60 background pixels' 1 (weights normalised to mean 1 per image)
    assert weighted == pytest.approx(plain.item() * 11 * 64 / (4 * 11 + 60), rel=1e-5)
    texture = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1  # bright everywhere
    blurred = texture * 0.5
    for kind in ("l1", "l2"):
        assert pixel_reconstruction_loss(blurred, texture, kind, 10.0) == pytest.approx(
            pixel_reconstruction_loss(blurred, texture, kind).item(), rel=1e-6)
    with pytest.raises(ValueError, match="foreground_weight"):
        VQGANTrainingArguments(output_dir="x", foreground_weight=-1.0)


class FailingAfter(torch.utils.data.Dataset):
    """The colour tiles, but fetching item number ``limit`` raises (a crash in the middle of training)."""

    def __init__(self, images: torch.Tensor, limit: int):
        self.images, self.limit, self.fetched = images, limit, 0

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        self.fetched += 1
        if self.fetched > self.limit:
            raise RuntimeError("simulated crash while loading a batch")
        return self.images[index]


def test_progress_is_logged_and_the_log_on_disk_survives_a_crash(tmp_path, caplog):
    # batch 4, log every 2 steps, crash while loading step 6's batch: steps 2 and 4 were logged before the crash.
    dataset = FailingAfter(colour_tiles(32), limit=4 * 5 + 2)
    args = quiet_args(tmp_path, max_steps=10, batch_size=4, logging_steps=2)
    with caplog.at_level("INFO", logger=training.__name__), pytest.raises(RuntimeError, match="simulated crash"):
        train_vqgan(micro_vqgan(), dataset, args)
    lines = [record.getMessage() for record in caplog.records if record.name == training.__name__]
    assert any(line.startswith("step 2/10: loss ") for line in lines)
    assert any(line.startswith("step 4/10: loss ") for line in lines)
    log = json.loads((tmp_path / "training_log.json").read_text())
    assert [record["step"] for record in log["history"]] == [2, 4] and log["finished"] is False

    finished = train_vqgan(micro_vqgan(), colour_tiles(32), quiet_args(tmp_path / "full", max_steps=4, batch_size=4,
                                                                      logging_steps=2))
    log = json.loads((tmp_path / "full" / "training_log.json").read_text())
    assert log["finished"] is True and [r["step"] for r in log["history"]] == [r["step"] for r in finished.history]

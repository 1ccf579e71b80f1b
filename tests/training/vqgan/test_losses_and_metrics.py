"""Training losses (adversarial, adaptive weight, perceptual) and reconstruction metrics (PSNR, SSIM, PA, FWIoU)."""

import math

import pytest
import torch
from torch import nn

from nuwa_hf.training.vqgan.losses import (
    PerceptualLoss,
    adaptive_adversarial_weight,
    hinge_discriminator_loss,
    hinge_generator_loss,
    non_saturating_discriminator_loss,
)
from nuwa_hf.evaluation.psnr import psnr_per_image
from nuwa_hf.evaluation.segmentation import confusion_matrix, scores_from_confusion
from nuwa_hf.evaluation.ssim import ssim_per_image
from nuwa_hf.models.vqgan.quantization import codebook_usage, quantize


def test_hinge_losses_vanish_only_for_confident_correct_logits():
    confident_real, confident_fake = torch.full((4,), 2.0), torch.full((4,), -2.0)
    assert float(hinge_discriminator_loss(confident_real, confident_fake)) == 0.0
    assert float(hinge_discriminator_loss(confident_fake, confident_real)) == pytest.approx(3.0)
    assert float(hinge_generator_loss(confident_fake)) == pytest.approx(2.0)
    assert float(non_saturating_discriminator_loss(torch.zeros(4), torch.zeros(4))) == pytest.approx(math.log(2))


def test_adaptive_weight_balances_gradient_norms_at_the_last_layer():
    layer = nn.Linear(3, 2)
    output = layer(torch.ones(5, 3))
    reconstruction = output.pow(2).mean()
    adversarial = 10.0 * output.mean()
    weight = adaptive_adversarial_weight(reconstruction, adversarial, layer.weight)
    grad_rec = torch.autograd.grad(reconstruction, layer.weight, retain_graph=True)[0].norm()
    grad_adv = torch.autograd.grad(adversarial, layer.weight, retain_graph=True)[0].norm()
    assert float(weight) == pytest.approx(float(grad_rec / (grad_adv + 1e-4)), rel=1e-5)
    assert not weight.requires_grad


def test_perceptual_loss_uses_a_frozen_local_backbone():
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2))

    class MultiLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = backbone

        def forward(self, images):
            return [self.body[0](images), self.body(images)]

    loss_fn = PerceptualLoss(MultiLayer())
    target = torch.rand(2, 3, 16, 16) * 2 - 1
    assert float(loss_fn(target, target)) == pytest.approx(0.0, abs=1e-6)
    reconstruction = (target + 0.5 * torch.randn_like(target)).clamp(-1, 1).requires_grad_(True)
    value = loss_fn(reconstruction, target)
    assert float(value.detach()) > 0
    value.backward()
    assert reconstruction.grad is not None and reconstruction.grad.abs().sum() > 0
    assert all(p.grad is None for p in backbone.parameters()), "the backbone must stay frozen"
    loss_fn.train()
    assert not loss_fn.backbone.training
    with pytest.raises(TypeError, match="nn.Module"):
        PerceptualLoss(lambda x: x)


def test_quantize_picks_nearest_codes_with_separate_losses_and_straight_through_gradient():
    codebook = torch.tensor([[0.0, 0.0], [1.0, 1.0], [-2.0, 0.0]])
    latents = torch.tensor([[0.9, 0.8], [-1.5, 0.2]]).t().reshape(1, 2, 1, 2).clone().requires_grad_(True)
    result = quantize(latents, codebook)
    assert result.indices.tolist() == [[[1, 2]]]
    expected_codes = torch.tensor([[1.0, 1.0], [-2.0, 0.0]]).t().reshape(1, 2, 1, 2)
    assert torch.equal(result.quantized.detach(), expected_codes)
    squared_error = (expected_codes - latents.detach()).pow(2).mean()
    assert float(result.codebook_loss) == pytest.approx(float(squared_error))
    assert float(result.commitment_loss.detach()) == pytest.approx(float(squared_error))
    result.quantized.sum().backward()
    assert torch.equal(latents.grad, torch.ones_like(latents))


def test_codebook_usage_reports_perplexity_and_share_of_codes():
    assert codebook_usage(torch.zeros(10, dtype=torch.long), 4) == {"perplexity": pytest.approx(1.0), "usage": 0.25}
    uniform = codebook_usage(torch.arange(8), 8)
    assert uniform["perplexity"] == pytest.approx(8.0) and uniform["usage"] == 1.0


def psnr(prediction, target):  # the VQ-GANs' range is [-1, 1]
    return psnr_per_image(prediction, target, data_range=2.0)


def ssim(prediction, target):
    return ssim_per_image(prediction, target, data_range=2.0)


def test_psnr_and_ssim_in_the_vqgan_range():
    torch.manual_seed(0)
    image = torch.rand(2, 3, 16, 16) * 2 - 1
    noisy = image + 0.1
    assert psnr(noisy, image).tolist() == pytest.approx([10 * math.log10(4 / 0.01)] * 2, rel=1e-4)
    assert ssim(image, image).tolist() == pytest.approx([1.0, 1.0], abs=1e-6)
    slightly, badly = image + 0.05 * torch.randn_like(image), image + 0.5 * torch.randn_like(image)
    assert 1.0 > float(ssim(slightly, image).mean()) > float(ssim(badly, image).mean())
    assert torch.allclose(ssim(slightly, image), ssim(image, slightly))
    with pytest.raises(ValueError, match="smaller than the 11x11 SSIM window"):
        ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_pixel_accuracy_and_frequency_weighted_iou_by_hand():
    target = torch.tensor([[0, 0, 0, 1], [1, 1, 2, 2]])
    prediction = torch.tensor([[0, 0, 1, 1], [1, 1, 2, 0]])
    scores = scores_from_confusion(confusion_matrix(prediction, target, num_classes=3))
    assert scores["pixel_accuracy"] == pytest.approx(6 / 8)
    # IoU: class 0: 2 / (3 + 3 - 2) = 0.5; class 1: 3 / (3 + 4 - 3) = 0.75; class 2: 1 / (2 + 1 - 1) = 0.5.
    assert scores["frequency_weighted_iou"] == pytest.approx(3 / 8 * 0.5 + 3 / 8 * 0.75 + 2 / 8 * 0.5)
    assert scores["mean_iou"] == pytest.approx((0.5 + 0.75 + 0.5) / 3)

"""Closed-form checks of the denoising objective."""
import math

import pytest
import torch

from ddep.noise import NoiseConfig, NoiseSampler, corrupt, denoising_loss, make_noisy_batch, sample_sigma


def _images(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=g) * 2 - 1  # [-1, 1], the documented pixel space


@pytest.mark.parametrize("formulation", ["unscaled", "scaled"])
def test_sigma_zero_leaves_images_unchanged(formulation):
    x = _images()
    batch = make_noisy_batch(x, NoiseConfig(sigma=0.0, formulation=formulation))
    assert torch.equal(batch.noisy, x)


@pytest.mark.parametrize("sigma", [0.05, 0.2, 0.8])
def test_unscaled_noise_has_std_sigma(sigma):
    x = _images(256)
    batch = make_noisy_batch(x, NoiseConfig(sigma=sigma), torch.Generator().manual_seed(1))
    std = (batch.noisy - x).std().item()
    assert abs(std - sigma) < 0.01 * sigma
    assert torch.allclose((batch.noisy - x) / sigma, batch.target, atol=1e-5)  # target is eps


@pytest.mark.parametrize("sigma", [0.2, 1.0, 3.0])
def test_scaled_form_preserves_unit_variance(sigma):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(512, 3, 16, 16, generator=g)
    batch = make_noisy_batch(x, NoiseConfig(sigma=sigma, formulation="scaled"), g)
    assert abs(batch.noisy.var().item() - 1.0) < 0.01
    # same signal-to-noise ratio as the unscaled form, divided by sqrt(1 + sigma^2)
    unscaled = corrupt(x, batch.sigma, batch.target, "unscaled")
    assert torch.allclose(batch.noisy, unscaled / math.sqrt(1 + sigma**2), atol=1e-5)


def test_uniform_sigma_is_drawn_per_sample_in_the_interval():
    s = sample_sigma(NoiseConfig(sigma=(0.2, 0.3)), 10_000, generator=torch.Generator().manual_seed(3))
    assert s.min() >= 0.2 and s.max() <= 0.3
    assert abs(s.mean().item() - 0.25) < 0.002
    assert len(torch.unique(s)) > 9000


def _true_eps(noisy, x, sigma, formulation):
    """The noise that made ``noisy`` from ``x``, solved from the corruption's closed form (not read
    from the batch), so an objective whose target is not this noise fails."""
    s = sigma.view(-1, 1, 1, 1)
    if formulation == "unscaled":
        return (noisy - x) / s
    gamma = 1 / (1 + s * s)
    return (noisy - gamma.sqrt() * x) / (1 - gamma).sqrt()


@pytest.mark.parametrize("formulation", ["unscaled", "scaled"])
@pytest.mark.parametrize("target", ["eps", "x"])
@pytest.mark.parametrize("loss", ["l2", "l1"])
def test_oracle_predictor_has_zero_loss(formulation, target, loss):
    x = _images()
    cfg = NoiseConfig(sigma=(0.1, 0.5), formulation=formulation, target=target, loss=loss)
    batch = make_noisy_batch(x, cfg, torch.Generator().manual_seed(4))
    oracle = _true_eps(batch.noisy, x, batch.sigma, formulation) if target == "eps" else x
    assert denoising_loss(oracle, batch.target, loss).item() < 1e-6  # float32 rounding only
    # predicting zero: E[eps^2] = 1 for the eps target (l2), and the images' own power for x
    zero = denoising_loss(torch.zeros_like(x), batch.target, loss).item()
    expected = (oracle.pow(2) if loss == "l2" else oracle.abs()).mean().item()
    assert zero == pytest.approx(expected, rel=1e-5)
    if target == "eps" and loss == "l2":
        assert zero == pytest.approx(1.0, abs=0.02)


def test_l2_loss_value():
    assert denoising_loss(torch.ones(2, 3), torch.zeros(2, 3)).item() == 1.0
    assert denoising_loss(torch.full((4,), 2.0), torch.zeros(4), "l1").item() == 2.0


@pytest.mark.parametrize("kwargs, key", [
    (dict(sigma=(0.3, 0.2)), "a <= b"),
    (dict(sigma=-0.1), ">= 0"),
    (dict(sigma=float("nan")), "finite"),
    (dict(sigma=(0.1, float("nan"))), "finite"),
    (dict(sigma=(float("nan"), 0.2)), "finite"),
    (dict(sigma=(0.1, float("inf"))), "finite"),
    (dict(formulation="vp"), "formulation"),
    (dict(target="noise"), "target"),
])
def test_bad_settings_are_named(kwargs, key):
    with pytest.raises(ValueError, match=key):
        NoiseConfig(**kwargs)


def test_labels():
    assert NoiseConfig(sigma=0.2).label == "0.2"
    assert NoiseConfig(sigma=[0.2, 0.3]).label == "U(0.2,0.3)"


def test_sampler_noise_is_a_function_of_seed_rank_and_step():
    """What makes a resumed pretraining bit-identical: the noise of a step does not depend on
    what was drawn before it, from the sampler or from torch's global RNG."""
    x = _images(4)
    cfg = NoiseConfig(sigma=(0.1, 0.5))

    def draw(sampler, step, rank=0):
        sampler.seed_step(seed=7, rank=rank, step=step)
        return sampler(x)

    straight = NoiseSampler(cfg)
    runs = [draw(straight, step) for step in range(3)]
    resumed = NoiseSampler(cfg)
    torch.rand(100)  # another consumer of the global RNG
    again = draw(resumed, 2)
    assert torch.equal(again.noisy, runs[2].noisy) and torch.equal(again.sigma, runs[2].sigma)
    assert not torch.equal(runs[1].noisy, runs[2].noisy)  # every step gets its own noise
    assert not torch.equal(draw(NoiseSampler(cfg), 2, rank=1).noisy, runs[2].noisy)  # and rank


def test_the_cli_parser_imports_no_torch():
    """`ddep --help` and the commands that train nothing import no torch (2 s a process)."""
    import subprocess
    import sys

    probe = "import sys, ddep.cli; ddep.cli.build_parser(); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"

"""Convolutional layers on devices: the grouped per-member convolution, a conv layer's step on
an ideal device against the float step, and a small binarized CNN on Fashion-MNIST."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from memsim.train.networks import conv_members
from memsim.train.spec import parse_train_spec
from memsim.train.trainer import Trainer, prepare


def test_members_convolve_independently():
    gen = torch.Generator().manual_seed(0)
    m, b, c, o, k = 3, 5, 4, 6, 3
    h = torch.randn(m, b, c, 9, 9, generator=gen)
    w = torch.randn(m, c * k * k, o, generator=gen)
    out = conv_members(h, w, k)
    for i in range(m):
        weight = w[i].T.reshape(o, c, k, k)  # rows (c, kh, kw) -> a Conv2d weight
        assert torch.allclose(out[i], F.conv2d(h[i], weight, padding=1), atol=1e-5)


def _trainer(device, lr=0.02):
    spec = parse_train_spec({"network": {"kind": "cnn", "conv": [4, "pool"], "hidden": []},
                             "subset": 64, "device": device, "seed": 3,
                             "mapping": {"w_max": 1.0, "max_pulses": 127},
                             "training": {"batch": 32, "lr": lr, "optimizer": "sgd"}})
    return Trainer(spec, prepare(spec))


def test_conv_step_on_an_ideal_fine_device_matches_the_float_step():
    """One SGD step of a conv net on an ideal device with a fine step equals the float step
    (torch's own conv2d gradient) to within the rounding of one pulse per weight."""
    levels = 20_000
    dev = _trainer({"kind": "ideal", "levels": levels})
    flt = _trainer("float")
    w0 = dev.net.syn.flat.clone()
    assert torch.allclose(w0, flt.net.syn.flat, atol=2 / levels)  # same start
    x = dev.data.x_train[:32].unsqueeze(0)
    y = dev.data.y_train[:32].unsqueeze(0)
    # the reference gradient, from torch's Conv2d and Linear on the float weights
    conv_w = flt.net.syn.layer(0)[0].T.reshape(4, 1, 3, 3).clone().requires_grad_(True)
    lin_w = flt.net.syn.layer(1)[0].clone().requires_grad_(True)
    img = x[0].view(32, 1, 28, 28)
    z = F.max_pool2d(torch.relu(F.conv2d(img, conv_w, padding=1) + flt.net.biases[0][0]), 2)
    logits = z.flatten(1) @ lin_w + flt.net.biases[1][0]
    loss = F.cross_entropy(logits, y[0])
    g_conv, g_lin = torch.autograd.grad(loss, [conv_w, lin_w])
    expected = torch.cat([(-0.02 * g_conv).reshape(4, 9).T.reshape(-1),
                          (-0.02 * g_lin).reshape(-1)])
    for tr in (dev, flt):
        _, grad, digital = tr.net.gradients(x, y)
        tr.opt.step(grad, digital)
    moved_float = flt.net.syn.flat - w0
    moved_dev = dev.net.syn.flat - w0
    assert torch.allclose(moved_float, expected, atol=1e-6)
    step = dev.net.syn.dw_min.max().item()
    assert float((moved_dev - expected).abs().max()) <= 2 * step + 1e-6
    assert float(expected.abs().max()) > 20 * step  # the step is resolved, not rounded away
    assert float(expected.abs().max()) < 127 * step  # and not clipped


def test_small_binarized_cnn_learns_fashion_mnist_on_devices():
    spec = parse_train_spec({"dataset": "fashion", "subset": 3000, "seed": 0,
                             "network": {"kind": "bcnn", "conv": [16, "pool", 32, "pool"],
                                         "hidden": [64]},
                             "device": {"kind": "ideal", "levels": 2000},
                             "mapping": {"w_max": 1.0, "policy": "split", "max_pulses": 14},
                             "training": {"epochs": 2, "batch": 50, "optimizer": "adam",
                                          "lr": 0.01}})
    h = Trainer(spec, prepare(spec)).run(progress=False)
    assert h["test_acc"].iloc[-1] > 0.6  # chance is 0.1
    assert h["pulses"].iloc[-1] > 0


@pytest.mark.cuda
def test_conv_network_runs_on_cuda():
    spec = parse_train_spec({"network": {"kind": "bcnn", "conv": [4, "pool"], "hidden": [16]},
                             "subset": 200, "device": {"kind": "hfox"},
                             "mapping": {"policy": "reset", "max_pulses": 14},
                             "training": {"epochs": 1, "batch": 50}})
    h = Trainer(spec, prepare(spec, "cuda"), "cuda").run(progress=False)
    assert h["test_acc"].iloc[-1] > 0.1

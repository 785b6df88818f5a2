"""Run an inference spec: code the trained network's weights into cells, draw reads, measure.

For every LUT × coding × read time × variability scale, each seed draws one read of every coded
cell; all draws of a cell go through the network together (``torch.func.vmap``). Per draw:
the bit error rate (per bit position for the float codings), the relative error
‖Y − Y_ref‖ / ‖Y_ref‖ of the first coded layer's output on the test set (exact inputs; computed
as ‖layer(x, W − W_ref)‖ in float64, so a decoded 1e38 stays finite), and the test accuracy.

The same random numbers serve every scale of a (LUT, coding, layer, read time, seed): the
curves against scale are common-random-number comparisons, smooth and paired.
"""

from __future__ import annotations

import time as timer
import zlib

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import seeds
from ..train.trainer import exact_cuda
from .codings import Coding, bit_fields
from .network import accuracy, forward, load_network
from .spec import InferSpec, LUTUse

TEST_BATCH = 2000


def _layer_rows(name: str, h: torch.Tensor) -> torch.Tensor:
    """The rows the layer multiplies by its weights (im2col patches for a convolution), with
    a column of ones for the bias: [rows, fan_in + 1], float64."""
    if name == "conv1":
        h = F.unfold(h.view(-1, 1, 28, 28), 5, padding=2)
    elif name == "conv2":
        h = F.unfold(h, 5)
    if name.startswith("conv"):
        h = h.transpose(1, 2).reshape(-1, h.shape[1])
    h = h.double()
    return torch.cat([h, torch.ones(len(h), 1, dtype=h.dtype, device=h.device)], 1)


def _layer_inputs(params, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The input of ``layer`` for images ``x`` in the exact network."""
    if layer == "conv1":
        return x
    h = F.max_pool2d(F.relu(F.conv2d(x.view(-1, 1, 28, 28), params["conv1.weight"],
                                     params["conv1.bias"], padding=2)), 2)
    if layer == "conv2":
        return h
    h = F.max_pool2d(F.relu(F.conv2d(h, params["conv2.weight"], params["conv2.bias"])), 2)
    h = h.flatten(1)
    for name in ("fc1", "fc2"):
        if layer == name:
            return h
        h = F.relu(F.linear(h, params[f"{name}.weight"], params[f"{name}.bias"]))
    return h


def _stream(device, seed: int, *labels) -> torch.Generator:
    """The generator of one draw: keyed by names, not positions, so adding a LUT or a coding
    to a spec changes no other cell's numbers."""
    key = zlib.crc32("|".join(map(str, labels)).encode())
    return torch.Generator(device=device).manual_seed(seeds.seed_for(seed, "read", key))


class Evaluator:
    """Test-set measurements of coded weights, with the reference quantities computed once.

    The layer-output error is linear in the weight error: ‖Y − Y_ref‖² = Σ_c Δw_cᵀ G Δw_c with
    G = XᵀX the Gram matrix of the layer's input rows (patches) over the whole test set, built
    once in float64. So a draw's error costs a few hundred multiply-adds, not a convolution,
    and a decoded 1e38 weight gives a finite (huge) error instead of an overflow.
    """

    GRAM_BATCH = 500

    def __init__(self, params, x: torch.Tensor, y: torch.Tensor, first_layer: str, device):
        exact_cuda(device)
        self.params = {k: v.to(device) for k, v in params.items()}
        self.x, self.y, self.layer, self.device = x.to(device), y.to(device), first_layer, device
        self.float_accuracy = accuracy(self.params, self.x, self.y)
        with torch.no_grad():
            gram = 0
            for i in range(0, len(self.x), self.GRAM_BATCH):
                rows = _layer_rows(first_layer, _layer_inputs(
                    self.params, self.x[i:i + self.GRAM_BATCH], first_layer))
                gram = gram + rows.T @ rows
        self.gram = gram
        w = self.params[f"{first_layer}.weight"].double().flatten(1)  # like the patches
        w_aug = torch.cat([w, self.params[f"{first_layer}.bias"].double()[:, None]], 1)
        self.ref_norm = float(torch.einsum("ci,ij,cj->", w_aug, gram, w_aug)) ** 0.5

    def measure(self, coded: dict[str, torch.Tensor]) -> tuple[np.ndarray, np.ndarray]:
        """Relative error of the first coded layer and accuracy, per draw (leading dim)."""
        draws = next(iter(coded.values())).shape[0]
        exact = torch.tensor([all(torch.equal(coded[k][d], self.params[k]) for k in coded)
                              for d in range(draws)])
        with torch.no_grad():
            name = f"{self.layer}.weight"
            delta = (coded[name].double() - self.params[name]).flatten(2)  # [D, out, fan_in]
            g = self.gram[:-1, :-1]
            err = torch.einsum("dci,ij,dcj->d", delta, g, delta).clamp_min(0).sqrt()
            hits = torch.zeros(draws, dtype=torch.long, device=self.device)
            if not bool(exact.all()):
                def logits(weights, xb):
                    return forward({**self.params, **weights}, xb)[0]

                batched = torch.func.vmap(logits, in_dims=(0, None))
                for i in range(0, len(self.x), TEST_BATCH):
                    pred = batched(coded, self.x[i:i + TEST_BATCH]).argmax(-1)
                    hits += (pred == self.y[i:i + TEST_BATCH]).sum(-1)
        acc = hits.double().cpu().numpy() / len(self.x)
        acc[exact.cpu().numpy()] = self.float_accuracy  # exactly the float network
        return err.cpu().numpy() / self.ref_norm, acc


def run_cells(spec: InferSpec, device="cpu", log=print) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                   float]:
    """Per draw: one row of measurements; per (cell, bit position): the bit error rate. Also
    the float network's test accuracy."""
    params, data = load_network(spec.network, log)
    n_test = spec.test_subset or len(data.x_test)
    ev = Evaluator(params, data.x_test[:n_test], data.y_test[:n_test], spec.layers[0], device)
    log(f"float network: test accuracy {100 * ev.float_accuracy:.2f} % on {n_test} images")
    weights = {la: ev.params[f"{la}.weight"] for la in spec.layers}
    rows, bit_rows = [], []
    for use, coding in spec.cells():
        t0 = timer.perf_counter()
        states = {la: coding.write(w.flatten(), use.lut) for la, w in weights.items()}
        reference = use.lut.sampler(use.model, use.lut.times[0], use.d2d, device)
        for t_i, read_time in enumerate(use.lut.times):
            sampler = reference if t_i == 0 else use.lut.sampler(use.model, read_time, use.d2d,
                                                                 device)
            for scale in spec.scales:
                coded, bits, nonfinite = {}, [], 0
                for la, w in weights.items():
                    g = torch.stack([sampler.draw(states[la], scale, _stream(
                        device, s, use.lut.name, coding.label, la, read_time)) for s in spec.seeds])
                    out = coding.read(g, w.flatten(), reference, scale)
                    coded[f"{la}.weight"] = out.weights.view(len(spec.seeds), *w.shape)
                    nonfinite = nonfinite + out.nonfinite.cpu().numpy()
                    if out.bit_errors is not None:
                        bits.append((out.bit_errors.cpu().numpy(), w.numel()))
                rel, acc = ev.measure(coded)
                ber = (sum(b.mean(1) * n for b, n in bits) / sum(n for _, n in bits)
                       if bits else np.full(len(spec.seeds), np.nan))
                for d, seed in enumerate(spec.seeds):
                    rows.append({"lut": use.lut.name, "coding": coding.label, "time": read_time,
                                 "scale": scale, "seed": seed, "ber": ber[d],
                                 "relative_error": rel[d], "accuracy": acc[d],
                                 "nonfinite": int(nonfinite[d])})
                if bits and coding.fmt:
                    per_bit = sum(b.mean(0) * n for b, n in bits) / sum(n for _, n in bits)
                    fields = bit_fields(coding.fmt)
                    for pos, (rate, fld) in enumerate(zip(per_bit, fields, strict=True)):
                        bit_rows.append({"lut": use.lut.name, "coding": coding.label,
                                         "time": read_time, "scale": scale, "bit": pos,
                                         "field": fld, "ber": rate})
        log(f"{use.lut.name} × {coding.label}: {timer.perf_counter() - t0:.1f} s")
    return pd.DataFrame(rows), pd.DataFrame(bit_rows), ev.float_accuracy


__all__ = ["Coding", "LUTUse", "run_cells"]

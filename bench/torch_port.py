"""The layer table and gender head as a PyTorch module, for ``bench --compare-torch``.

This module imports torch at the top: only ``torch_compare`` imports it, inside a
function, when a comparison is asked for (torch is never an install requirement).

The module takes what the ONNX graph takes and gives what it gives: uint8 (N, H, W, 3)
RGB in, cast and mean subtraction inside (in float32, then the compute dtype), NCHW
inside; outputs ``descriptor`` (N, D) float32 and, with a head, ``probabilities``
(N, 2) float32. Semantics are MatConvNet's, as in ``convert/reference.py``:

* conv: correlation with ``(top, bottom, left, right)`` zero padding; asymmetric
  padding goes through ``F.pad`` (torch's own padding is symmetric);
* shapes come from ``convert/layer_plan.py``; a conv the plan marks fully connected
  (fc6/fc7/fc8: its window covers its whole input) is a ``linear`` on the
  input flattened in (C, H, W) order, as the ONNX graph's Gemm: the weight is the
  (Cout, Cin, H, W) conv weight reshaped, the same bytes;
* max pooling pads with ``-inf`` (padding never wins); average pooling divides the
  window sum by the number of in-image cells (padding excluded), floor output sizes;
* LRN: MatConvNet's window (``m1 = (D - 1) // 2`` channels before, the rest after)
  and an alpha not divided by D, which ``F.local_response_norm`` does not offer;
* dropout is the identity, softmax is over channels;
* descriptor ``pool5`` is the global average of the maps; the head's kernels are
  ``[in, out]``, ReLU between dense layers, softmax last, always in float32 (the fp16
  ONNX graph also runs its head in float32).
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gender_cli import contract
from gender_cli.convert.layer_plan import INPUT, Step, descriptor_plan, plan
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError

DTYPES = {"fp32": torch.float32, "fp16": torch.float16}


def _tensor(array, dtype: torch.dtype, device) -> torch.Tensor:
    values = np.ascontiguousarray(array, dtype=np.float32)
    if not values.flags.writeable:  # a memory-mapped layer table: torch wants its own copy
        values = values.copy()
    return torch.from_numpy(values).to(device=device, dtype=dtype)


def _conv_weight(layer: Layer) -> np.ndarray:
    return np.transpose(np.asarray(layer.weights), (3, 2, 0, 1))  # (H, W, Cin, Cout) -> (Cout, Cin, H, W)


def _bias(layer: Layer, cout: int) -> np.ndarray:
    return np.zeros(cout, np.float32) if layer.bias is None else np.asarray(layer.bias).reshape(cout)


class Preprocess(nn.Module):
    """uint8 NHWC RGB -> mean-subtracted NCHW in the compute dtype."""

    def __init__(self, mean, dtype: torch.dtype, device, channels_last: bool):
        super().__init__()
        self.register_buffer("mean", _tensor(np.asarray(mean).reshape(1, 1, 1, 3), torch.float32, device))
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        centred = (images.to(torch.float32) - self.mean).to(self.dtype)
        # A permuted NHWC tensor already has channels_last strides; contiguous() makes it
        # plain NCHW where that is asked for (the CPU default).
        return centred.permute(0, 3, 1, 2).contiguous(memory_format=self.memory_format)


class Conv(nn.Module):
    def __init__(self, layer: Layer, dtype, device):
        super().__init__()
        self.weight = nn.Parameter(_tensor(_conv_weight(layer), dtype, device), requires_grad=False)
        self.bias = nn.Parameter(_tensor(_bias(layer, layer.weights.shape[3]), dtype, device), requires_grad=False)
        top, bottom, left, right = (int(p) for p in layer.pad)
        self.symmetric = top == bottom and left == right
        self.padding = (top, left) if self.symmetric else (0, 0)
        self.explicit_pad = None if self.symmetric else (left, right, top, bottom)
        self.stride = tuple(int(s) for s in layer.stride)
        self.dilation = tuple(int(d) for d in layer.dilate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.explicit_pad is not None:
            x = F.pad(x, self.explicit_pad)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation)


class FullyConnected(nn.Module):
    """A conv whose window covers its input: linear on the (C, H, W)-flattened input."""

    def __init__(self, layer: Layer, dtype, device):
        super().__init__()
        cout = layer.weights.shape[3]
        weight = _conv_weight(layer).reshape(cout, -1)
        self.weight = nn.Parameter(_tensor(weight, dtype, device), requires_grad=False)
        self.bias = nn.Parameter(_tensor(_bias(layer, cout), dtype, device), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.flatten(1), self.weight, self.bias)


class Pool(nn.Module):
    def __init__(self, layer: Layer, input_hw: tuple[int, int], dtype, device):
        super().__init__()
        top, bottom, left, right = (int(p) for p in layer.pad)
        self.kernel = tuple(int(p) for p in layer.pool)
        self.stride = tuple(int(s) for s in layer.stride)
        self.pad = (left, right, top, bottom)
        self.method = layer.method
        self.padded = any(self.pad)
        if self.method == "avg" and self.padded:
            # in-image cells per window, computed once for the fixed input size
            ones = F.pad(torch.ones((1, 1) + tuple(input_hw), dtype=torch.float32), self.pad)
            count = F.avg_pool2d(ones, self.kernel, self.stride, divisor_override=1)
            self.register_buffer("count", count.to(device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "max":
            if self.padded:
                x = F.pad(x, self.pad, value=float("-inf"))
            return F.max_pool2d(x, self.kernel, self.stride)
        if not self.padded:
            return F.avg_pool2d(x, self.kernel, self.stride)
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride, divisor_override=1)
        return total / self.count


class LocalResponseNorm(nn.Module):
    def __init__(self, layer: Layer):
        super().__init__()
        depth, kappa, alpha, beta = layer.lrn
        self.depth, self.kappa, self.alpha, self.beta = int(depth), float(kappa), float(alpha), float(beta)
        self.before = (self.depth - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        squares = F.pad((x * x).unsqueeze(1), (0, 0, 0, 0, self.before, self.depth - self.before - 1)).squeeze(1)
        window = sum(squares[:, q : q + channels] for q in range(self.depth))
        return x * (self.kappa + self.alpha * window) ** (-self.beta)


class ChannelSoftmax(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)


class ChannelAffine(nn.Module):
    """``x * gamma + beta`` per channel (NCHW) or per feature (flat input)."""

    def __init__(self, step: Step, dtype, device):
        super().__init__()
        dims = (-1,) if step.flat_output else (-1, 1, 1)
        self.register_buffer("scale", _tensor(np.asarray(step.layer.weights).reshape(dims), dtype, device))
        self.register_buffer("shift", _tensor(np.asarray(step.layer.bias).reshape(dims), dtype, device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class PaddedAdd(nn.Module):
    """The sum of two NCHW maps, the smaller zero-extended at the end of each axis."""

    def __init__(self, step: Step):
        super().__init__()
        self.grow = [
            tuple(p for extra in reversed([o - i for i, o in zip(shape, step.output_shape)]) for p in (0, extra))
            for shape in step.input_shapes
        ]

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return F.pad(a, self.grow[0]) + F.pad(b, self.grow[1])


class GlobalAverage(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


def _conv_module(step: Step, dtype, device) -> nn.Module:
    return FullyConnected(step.layer, dtype, device) if step.fully_connected else Conv(step.layer, dtype, device)


BUILDERS: dict[str, Callable[[Step, torch.dtype, object], nn.Module]] = {
    "conv": _conv_module,
    "pool": lambda step, dtype, device: Pool(step.layer, step.input_shape[1:], dtype, device),
    "relu": lambda step, dtype, device: nn.ReLU(inplace=True),
    "dropout": lambda step, dtype, device: nn.Identity(),
    "softmax": lambda step, dtype, device: ChannelSoftmax(),
    "lrn": lambda step, dtype, device: LocalResponseNorm(step.layer),
    "affine": ChannelAffine,
    "add": lambda step, dtype, device: PaddedAdd(step),
    "global_pool": lambda step, dtype, device: GlobalAverage(),
}


class LayerGraph(nn.Module):
    """The planned layers as one module on NCHW input: each step takes the outputs of
    the steps it names (a residual join takes two)."""

    def __init__(self, steps: list[Step], dtype: torch.dtype, device):
        super().__init__()
        self.steps = [(step.index, step.inputs) for step in steps]
        self.layers = nn.ModuleList(BUILDERS[step.layer.type](step, dtype, device) for step in steps)
        readers = Counter(i for step in steps for i in step.inputs)
        for step, module in zip(steps, self.layers):
            if isinstance(module, nn.ReLU):  # in place only where nothing else reads the value
                module.inplace = readers[step.inputs[0]] == 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {INPUT: x}
        for (index, inputs), module in zip(self.steps, self.layers):
            values[index] = module(*(values[i] for i in inputs))
        return values[self.steps[-1][0]]


def layer_stack(steps: list[Step], dtype: torch.dtype, device) -> LayerGraph:
    return LayerGraph(steps, dtype, device)


class Classifier(nn.Module):
    """uint8 NHWC images -> {"descriptor": (N, D) float32[, "probabilities": (N, 2) float32]}."""

    def __init__(
        self,
        network: Network,
        descriptor: str,
        head=None,
        device="cpu",
        precision: str = "fp32",
        channels_last: bool = False,
    ):
        super().__init__()
        if precision not in DTYPES:
            raise ModelFileError(f"the PyTorch port runs {', '.join(DTYPES)}, not {precision!r}")
        dtype = DTYPES[precision]
        self.planned = descriptor_plan(network, descriptor)
        self.preprocess = Preprocess(network.mean, dtype, device, channels_last)
        self.backbone = layer_stack(self.planned.steps, dtype, device)
        self.head = _head_layers(head, device) if head is not None else None
        if channels_last:  # conv weights too, or cuDNN converts them on every call
            self.to(memory_format=torch.channels_last)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.backbone(self.preprocess(images))
        if self.planned.global_average_pool:
            x = x.mean(dim=(2, 3), dtype=torch.float32)
        elif self.planned.flatten:
            x = x.flatten(1)
        outputs = {contract.DESCRIPTOR: x.to(torch.float32)}
        if self.head is not None:
            outputs[contract.PROBABILITIES] = self.head(outputs[contract.DESCRIPTOR])
        return outputs


def _head_layers(head, device) -> nn.Sequential:
    """The HeadSpec dense stack in float32: kernels are [in, out], so linear uses their transpose."""
    layers = nn.Sequential()
    last = len(head.kernels) - 1
    for index, (kernel, bias) in enumerate(zip(head.kernels, head.biases)):
        kernel = np.asarray(kernel, np.float32)
        dense = nn.Linear(kernel.shape[0], kernel.shape[1], device=device)
        with torch.no_grad():
            dense.weight.copy_(_tensor(kernel.T, torch.float32, device))
            dense.bias.copy_(_tensor(bias, torch.float32, device))
        dense.requires_grad_(False)
        layers.add_module(f"dense_{index}", dense)
        layers.add_module(f"relu_{index}" if index < last else "softmax", nn.ReLU() if index < last else nn.Softmax(dim=1))
    return layers


def forward_numpy(network: Network, images, upto: str | None = None, precision: str = "fp32", device="cpu") -> np.ndarray:
    """Like ``reference.forward``: (N, H, W, 3) 0..255 RGB in, layer ``upto``'s output as
    float32 (N, H', W', C) maps; after a fully connected layer (N, 1, 1, D), as the
    reference's 1x1 conv output."""
    dtype = DTYPES[precision]
    stack = layer_stack(plan(network, upto), dtype, device)
    preprocess = Preprocess(network.mean, dtype, device, channels_last=False)
    with torch.inference_mode():
        x = stack(preprocess(torch.as_tensor(np.asarray(images), device=device)))
        x = x.permute(0, 2, 3, 1) if x.dim() == 4 else x[:, None, None, :]
        return x.to(torch.float32).cpu().numpy()

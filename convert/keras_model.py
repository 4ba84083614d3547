"""Build a Keras 3 model from the layer graph with the source's exact semantics.

Each layer is built by its kind's ``keras`` part (:mod:`gender_cli.convert.kinds`), in
the order and with the shapes of ``convert/layer_plan.py``; this module holds the
custom Keras layers those parts use, and the result is checked against
:mod:`gender_cli.convert.reference`. Details that a naive translation gets wrong:

* asymmetric padding is explicit (``ZeroPadding2D``) before a ``'valid'`` op, so the
  output size is MatConvNet's ``floor((H + pads - k_eff) / s) + 1``;
* conv weights are ``(H, W, Cin, Cout)`` in both MatConvNet and Keras: no transpose;
  fc6/fc7/fc8 stay convolutions (fc6 is a 7x7 conv on 7x7 maps), so there is no flatten
  order to get wrong;
* Keras refuses ``strides > 1`` with ``dilation_rate > 1``; such a conv runs at stride 1
  and is subsampled (:class:`Subsample2D`), which is the same arithmetic;
* padded max pooling pads with ``-inf`` and padded average pooling divides by the
  number of in-image cells (see the reference module for the MatConvNet source),
  both in :class:`MatConvNetPooling2D`;
* LRN is :class:`MatConvNetLRN` (MatConvNet's ``alpha`` is not divided by the depth,
  and even depths are allowed);
* dlib's residual join adds maps of different sizes (:class:`PaddedAdd`).

Custom layers are registered under the package ``gender_cli``, so a saved
``model.keras`` reloads with ``keras.saving.load_model`` once this module is imported.
Only TensorFlow-needing code paths import this module.
"""

from __future__ import annotations

import numpy as np

from gender_cli import contract
from gender_cli.convert.kinds import kind_of
from gender_cli.convert.layer_plan import INPUT, descriptor_plan, plan
from gender_cli.convert.network import Layer, Network
from gender_cli.errors import ModelFileError
from gender_cli.tf_quiet import import_keras

keras = import_keras()

PACKAGE = "gender_cli"


@keras.saving.register_keras_serializable(package=PACKAGE)
class MeanSubtraction(keras.layers.Layer):
    """``x - mean`` per channel: the model takes 0..255 RGB like the ONNX graph."""

    def __init__(self, mean, **kwargs):
        super().__init__(**kwargs)
        self.mean = [float(m) for m in mean]

    def call(self, inputs):
        return inputs - keras.ops.convert_to_tensor(np.asarray(self.mean, np.float32))

    def get_config(self):
        return {**super().get_config(), "mean": self.mean}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Subsample2D(keras.layers.Layer):
    """Keep every ``stride``-th row and column, starting at the first."""

    def __init__(self, stride, **kwargs):
        super().__init__(**kwargs)
        self.stride = tuple(int(s) for s in stride)

    def call(self, inputs):
        return inputs[:, :: self.stride[0], :: self.stride[1], :]

    def get_config(self):
        return {**super().get_config(), "stride": list(self.stride)}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MatConvNetPooling2D(keras.layers.Layer):
    """``vl_nnpool`` with padding: max ignores padded cells, avg divides by in-image cells."""

    def __init__(self, pool_size, strides, pad, method, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(p) for p in pool_size)
        self.strides = tuple(int(s) for s in strides)
        self.pad = tuple(int(p) for p in pad)  # (top, bottom, left, right)
        self.method = method

    def _padded(self, x, value):
        top, bottom, left, right = self.pad
        return keras.ops.pad(
            x, [[0, 0], [top, bottom], [left, right], [0, 0]], constant_values=value
        )

    def call(self, inputs):
        if self.method == "max":
            return keras.ops.max_pool(
                self._padded(inputs, float("-inf")), self.pool_size, self.strides, "valid"
            )
        window_mean = keras.ops.average_pool(
            self._padded(inputs, 0.0), self.pool_size, self.strides, "valid"
        )
        inside = self._padded(keras.ops.ones_like(inputs[:1, :, :, :1]), 0.0)
        inside_fraction = keras.ops.average_pool(inside, self.pool_size, self.strides, "valid")
        return window_mean / inside_fraction

    def get_config(self):
        return {
            **super().get_config(),
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "pad": list(self.pad),
            "method": self.method,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class MatConvNetLRN(keras.layers.Layer):
    """``vl_nnnormalize``: ``x * (kappa + alpha * sum of x^2 over D channels) ^ -beta``."""

    def __init__(self, depth, kappa, alpha, beta, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.kappa, self.alpha, self.beta = int(depth), float(kappa), float(alpha), float(beta)

    def call(self, inputs):
        m1 = (self.depth - 1) // 2
        m2 = self.depth - m1 - 1
        channels = inputs.shape[-1]
        squares = keras.ops.pad(keras.ops.square(inputs), [[0, 0], [0, 0], [0, 0], [m1, m2]])
        window_sum = squares[..., 0:channels]
        for q in range(1, self.depth):
            window_sum = window_sum + squares[..., q : q + channels]
        return inputs * keras.ops.power(self.kappa + self.alpha * window_sum, -self.beta)

    def get_config(self):
        return {
            **super().get_config(),
            "depth": self.depth,
            "kappa": self.kappa,
            "alpha": self.alpha,
            "beta": self.beta,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class ChannelAffine(keras.layers.Layer):
    """``x * scale + shift`` per channel (the ``affine`` kind: dlib's frozen batch norm)."""

    def __init__(self, scale, shift, **kwargs):
        super().__init__(**kwargs)
        self.scale = [float(v) for v in np.asarray(scale).reshape(-1)]
        self.shift = [float(v) for v in np.asarray(shift).reshape(-1)]

    def call(self, inputs):
        scale = keras.ops.convert_to_tensor(np.asarray(self.scale, np.float32))
        shift = keras.ops.convert_to_tensor(np.asarray(self.shift, np.float32))
        return inputs * scale + shift

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "shift": self.shift}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PaddedAdd(keras.layers.Layer):
    """The ``add`` kind: the sum of two NHWC maps, the smaller zero-extended at the end
    of each axis to the larger (dlib's ``add_prev``)."""

    def call(self, inputs):
        a, b = inputs
        target = [max(x, y) for x, y in zip(a.shape[1:], b.shape[1:])]

        def grown(x):
            extra = [t - s for s, t in zip(x.shape[1:], target)]
            return keras.ops.pad(x, [[0, 0]] + [[0, e] for e in extra]) if any(extra) else x

        return grown(a) + grown(b)


class FromArray(keras.initializers.Initializer):
    """Create a variable straight from the layer table's array.

    Cheaper than initialising and then assigning: the variable is made from one copy of
    the array, where zeros-then-assign kept a spare full-size buffer alive (411 MB for
    fc6) and raised the peak memory of a full convert by about as much again.
    """

    def __init__(self, array, layer_name):
        self.array, self.layer_name = array, layer_name

    def __call__(self, shape, dtype=None):
        if int(np.prod(shape)) != self.array.size:
            raise ModelFileError(
                f"layer {self.layer_name!r}: array of shape {tuple(self.array.shape)} where "
                f"{tuple(shape)} is needed"
            )
        return np.asarray(self.array, dtype=np.float32).reshape(shape)


def zero_pad(layer: Layer, x):
    top, bottom, left, right = layer.pad
    if not any(layer.pad):
        return x
    return keras.layers.ZeroPadding2D(((top, bottom), (left, right)), name=f"{layer.name}_pad")(x)


def _backbone(network: Network, upto: str | None, input_size, steps=None):
    steps = steps if steps is not None else plan(network, upto, input_size)
    height, width = steps[0].input_shape[1:] if steps else tuple(network.input_size[:2])
    inputs = keras.Input(shape=(height, width, 3), dtype="float32", name=contract.INPUT_NAME)
    tensors = {INPUT: MeanSubtraction(np.asarray(network.mean).reshape(-1), name="mean_subtraction")(inputs)}
    for step in steps:
        tensors[step.index] = kind_of(step.layer).keras(step.layer, *(tensors[i] for i in step.inputs))
    return inputs, tensors[steps[-1].index] if steps else tensors[INPUT]


def build_keras_model(network: Network, upto: str | None = None, input_size=None) -> "keras.Model":
    """The network up to layer ``upto`` (default: all) as a Keras model.

    Input: float32 (N, H, W, 3) RGB 0..255 (the mean is subtracted inside), with
    (H, W) = ``input_size`` or the network's input size; ``(None, None)`` makes it
    size-agnostic. Output: (N, H', W', C).
    """
    inputs, outputs = _backbone(network, upto, input_size)
    model = keras.Model(inputs, outputs, name="vgg_face" if upto is None else f"vgg_face_{upto}")
    return model


def keras_descriptor_model(network: Network, descriptor: str, input_size=None) -> "keras.Model":
    """(N, H, W, 3) RGB 0..255 → (N, D) descriptor ``descriptor`` (contract.DESCRIPTORS)."""
    planned = descriptor_plan(network, descriptor, input_size)
    inputs, x = _backbone(network, None, input_size, planned.steps)
    # fully connected layers stay 1x1 convolutions here: (N, 1, 1, D) maps to flatten
    if planned.global_average_pool:
        x = keras.layers.GlobalAveragePooling2D(name="global_average")(x)
    else:
        x = keras.layers.Flatten(name="flatten")(x)
    model = keras.Model(inputs, x, name=f"vgg_face_{descriptor}")
    return model

"""Kind ``conv``: 2-D correlation with bias, padding, stride and dilation (MatConvNet
``vl_nnconv``, Caffe Convolution/InnerProduct, Keras Conv2D/Dense, dlib ``con`` and
``fc``).

Weights are ``(H, W, Cin, Cout)``, bias ``(Cout,)``; ``y[n,i,j,o] = b[o] + sum_{u,v,c}
W[u,v,c,o] * xpad[n, i*sy + u*dy, j*sx + v*dx, c]`` with ``xpad`` zero-padded by
``(top, bottom, left, right)``: a correlation (no kernel flip), like TensorFlow's. A conv
whose window covers its whole input (VGG's fc6/fc7/fc8, dlib's fc) is *fully connected*:
its output is ``(Cout,)`` and the ONNX graph runs it as a Gemm on the input flattened
in (C, H, W) order (the same bytes as the conv weight), which is also faster.
"""

from __future__ import annotations

import numpy as np

from gender_cli.convert.kinds.geometry import onnx_pads, out_hw, output_size, pad_nhwc, row, window_slices
from gender_cli.convert.kinds.record import LayerKind
from gender_cli.convert.layer_registry import conv_arrays, pad4, pair, positive
from gender_cli.convert.network import Layer
from gender_cli.errors import ModelFileError


def shape(layer: Layer, shape: tuple) -> tuple[tuple, bool]:
    if layer.weights is None:
        raise ModelFileError(f"conv layer {layer.name!r} has no weights")
    kh, kw, cin, cout = (int(s) for s in layer.weights.shape)
    if len(shape) == 1:
        if kh == kw == 1 and shape[0] == cin:
            return (cout,), True
        raise ModelFileError(
            f"conv layer {layer.name!r} follows a fully connected layer ({shape[0]} values) "
            f"but takes {kh}x{kw}x{cin}"
        )
    c, h, w = shape
    if c != cin:
        raise ModelFileError(f"layer {layer.name!r}: filters expect {cin} input channels, got {c}")
    if (h, w) == (kh, kw) and not any(layer.pad) and tuple(layer.dilate) == (1, 1):
        return (cout,), True
    top, bottom, left, right = (int(p) for p in layer.pad)
    (sy, sx), (dy, dx) = layer.stride, layer.dilate
    return (cout, output_size(h, kh, sy, top, bottom, dy), output_size(w, kw, sx, left, right, dx)), False


def reference(layer: Layer, x: np.ndarray) -> np.ndarray:
    w = np.asarray(layer.weights, dtype=np.float64)
    kh, kw, cin, cout = w.shape
    if x.shape[3] != cin:
        raise ModelFileError(f"layer {layer.name!r}: filters expect {cin} input channels, got {x.shape[3]}")
    ho, wo = out_hw(layer, x, (kh, kw), layer.dilate)
    xp = pad_nhwc(x, layer.pad, 0.0)
    y = np.zeros((x.shape[0], ho, wo, cout), np.float64)
    for u, v, rows, cols in window_slices(layer, (kh, kw), layer.dilate, (ho, wo)):
        y += xp[:, rows, cols, :] @ w[u, v]
    if layer.bias is not None:
        y += np.asarray(layer.bias, dtype=np.float64)
    return y


def _onnx_weights(layer: Layer, dtype: np.dtype):
    # (H, W, Cin, Cout) -> (Cout, Cin, H, W); one copy, converted to ``dtype`` on the way.
    return lambda: np.ascontiguousarray(np.transpose(layer.weights, (3, 2, 0, 1)), dtype=dtype)


def _onnx_bias(layer: Layer, cout: int, dtype: np.dtype):
    if layer.bias is None:
        return lambda: np.zeros(cout, dtype)
    return lambda: np.asarray(layer.bias, dtype=dtype).reshape(cout)


def onnx(g, step, dtype: np.dtype, x: str) -> str:
    layer = step.layer
    kh, kw, cin, cout = (int(s) for s in layer.weights.shape)
    bias = g.initializer(f"{layer.name}_b", dtype, (cout,), _onnx_bias(layer, cout, dtype))
    if step.fully_connected:
        # The ONNX conv layout reshaped: same bytes, declared 2-D so that quantizers see
        # a Gemm weight initializer.
        make = _onnx_weights(layer, dtype)
        weights = g.initializer(f"{layer.name}_W", dtype, (cout, cin * kh * kw), lambda: make().reshape(cout, -1))
        if len(step.input_shape) != 1:
            x = g.node("Flatten", [x], f"{layer.name}_flatten", axis=1)
        return g.node("Gemm", [x, weights, bias], layer.name, transB=1)
    weights = g.initializer(f"{layer.name}_W", dtype, (cout, cin, kh, kw), _onnx_weights(layer, dtype))
    return g.node(
        "Conv", [x, weights, bias], layer.name,
        kernel_shape=[kh, kw], strides=[int(s) for s in layer.stride], pads=onnx_pads(layer),
        dilations=[int(d) for d in layer.dilate],
    )


def keras(layer: Layer, x):
    """Explicit ``ZeroPadding2D`` before a 'valid' Conv2D gives MatConvNet's floor sizes
    for any padding; Keras refuses stride > 1 with dilation > 1, so such a conv runs at
    stride 1 and is subsampled (the same arithmetic). Fully connected convs stay
    convolutions (fc6 is a 7x7 conv on 7x7 maps): no flatten order to get wrong."""
    from gender_cli.convert.keras_model import FromArray, Subsample2D, keras as K, zero_pad

    kh, kw, _, cout = layer.weights.shape
    strided_dilation = max(layer.stride) > 1 and max(layer.dilate) > 1
    conv = K.layers.Conv2D(
        cout, (kh, kw),
        strides=(1, 1) if strided_dilation else tuple(layer.stride),
        dilation_rate=tuple(layer.dilate),
        padding="valid",
        use_bias=layer.bias is not None,
        kernel_initializer=FromArray(layer.weights, layer.name),
        bias_initializer=FromArray(layer.bias, layer.name),
        name=layer.name,
    )
    x = conv(zero_pad(layer, x))
    # The variables now hold the weights; a plain initializer keeps the saved config
    # standard and lets the array go.
    conv.kernel_initializer = K.initializers.Zeros()
    conv.bias_initializer = K.initializers.Zeros()
    if strided_dilation:
        x = Subsample2D(layer.stride, name=f"{layer.name}_subsample")(x)
    return x


def from_mat(raw: dict, name: str, label: str) -> Layer:
    weights, bias = conv_arrays(raw, label)
    return Layer(
        name=name, type="conv", weights=weights, bias=bias,
        stride=positive(pair(raw, "stride", label, (1, 1)), "stride", label),
        pad=pad4(raw, label),
        dilate=positive(pair(raw, "dilate", label, (1, 1)), "dilate", label),
    )


def mat_values(layer: Layer, layout: str) -> dict:
    release = layout == "release"
    return {
        "weights": [layer.weights, layer.bias.reshape(-1, 1)],
        "size": row(layer.weights.shape),
        "pad": row(layer.pad),
        "stride": row(layer.stride),
        "dilate": 1.0 if release else row(layer.dilate),
    }


KIND = LayerKind(
    "conv", "2-D correlation with bias; fully connected when its window covers its input",
    shape, reference, onnx, keras, from_mat=from_mat, mat_values=mat_values,
    mat_fields={
        "release": ("weights", "size", "pad", "stride", "type", "name", "precious", "dilate", "opts"),
        "zoo": ("name", "type", "weights", "size", "pad", "stride", "precious", "dilate", "opts"),
    },
)

"""One record per layer kind: every piece of code that deals with a kind, in one place.

A network is a graph of layers (:mod:`gender_cli.convert.network`); each layer has a
kind, and the kind's :class:`LayerKind` record holds what gender-cli knows about it:

* ``shape``: the per-image output shape from the input shapes, and whether the layer
  is *fully connected* (:mod:`~gender_cli.convert.layer_plan` walks these);
* ``reference``: the NumPy forward pass in float64, written from the source
  framework's own definition and sharing no code with the backends: the oracle the
  ONNX graph, the Keras model and the PyTorch port are checked against;
* ``onnx``: the ONNX emitter (:mod:`~gender_cli.export.backbone_graph` walks these);
* ``keras``: the Keras builder (:mod:`~gender_cli.convert.keras_model`; imports Keras
  only when called);
* ``from_mat`` and ``mat_fields``: the MatConvNet converter (raw struct to
  :class:`Layer`) and the fields a MatConvNet stand-in writes per layout, for the
  kinds MatConvNet has.

The format readers (Caffe, Keras HDF5, dlib) map their own layer types onto these
kinds; ``tests/test_layer_kinds.py`` proves every kind complete and every backend
(the PyTorch port included) in agreement with the reference.

Calling conventions, ``xs`` being one value per input of the layer (``arity``):
``shape(layer, *shapes) -> (shape, fully_connected)`` with per-image shapes
``(C, H, W)`` or ``(D,)``; ``reference(layer, *arrays)`` on ``(N, H, W, C)`` float64;
``onnx(g, step, dtype, *tensors) -> tensor`` on NCHW tensors; ``keras(layer, *tensors)``
on NHWC tensors.
"""

from __future__ import annotations

from gender_cli.convert.kinds import add, affine, conv, dropout, global_pool, lrn, pool, relu, softmax
from gender_cli.convert.kinds.record import PARTS, LayerKind
from gender_cli.errors import UnsupportedLayerError


KINDS: dict[str, LayerKind] = {
    module.KIND.name: module.KIND
    for module in (conv, relu, pool, dropout, softmax, lrn, affine, add, global_pool)
}
SUPPORTED_TYPES = tuple(KINDS)


def kind_of(layer, index: int | None = None) -> LayerKind:
    """The record of ``layer``'s kind; UnsupportedLayerError naming the layer otherwise."""
    record = KINDS.get(layer.type)
    if record is None:
        where = f"layer {index + 1} " if index is not None else "layer "
        raise UnsupportedLayerError(
            f"{where}{layer.name!r} has type {layer.type!r}; supported types: {', '.join(KINDS)}"
        )
    return record

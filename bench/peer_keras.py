"""The source libraries' own Keras models of VGG-Face, rebuilt from their code, and their preprocessing.

Independent of gender-cli's converter: each builder follows the library's source line
by line (layer types, order, padding, activations), so ``load_weights`` of a file in
that library's layout works exactly as it does in the library, and the model predicts
what the library predicts. Tests load our written files into them (the real reader of
the format); ``bench/scripts/compare_deepface.py`` times deepface's per-image loop with them.

* keras-vggface ``VGG16`` (``keras_vggface/models.py``) and ``utils.preprocess_input``
  with ``version=1`` (RGB -> BGR, minus the BGR mean);
* deepface ``VGGFace.base_model`` (``deepface/models/facial_recognition/VGGFace.py``) and
  the gender model of ``deepface/models/demography/Gender.py`` on ``model.layers[-4]``;
  deepface feeds BGR pixels scaled to [0, 1] (``DeepFace.analyze``: faces from
  ``extract_faces`` are RGB/255, flipped back to BGR).

Keras 3 refuses '/' in layer names, so keras-vggface's ``fc6/relu`` becomes ``fc6_relu``;
names of weightless layers do not matter to ``load_weights``. Imports TensorFlow.
"""

from __future__ import annotations

import numpy as np

from gender_cli.tf_quiet import import_keras

keras = import_keras()
L = keras.layers

BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
VGGFACE_MEAN_BGR = (93.5940, 104.7624, 129.1863)  # keras_vggface.utils.preprocess_input, version 1


def keras_vggface_vgg16(channels: dict, classes: int = 2622) -> "keras.Model":
    """keras-vggface's VGG16(include_top=True) with ``channels`` per block (vgg_face.CHANNELS)."""
    x = inputs = keras.Input((224, 224, 3))
    for block, count in BLOCKS:
        for j in range(1, count + 1):
            x = L.Conv2D(channels[f"conv{block}"], (3, 3), activation="relu", padding="same",
                         name=f"conv{block}_{j}")(x)
        x = L.MaxPooling2D((2, 2), strides=(2, 2), name=f"pool{block}")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(channels["fc"], name="fc6")(x)
    x = L.Activation("relu", name="fc6_relu")(x)
    x = L.Dense(channels["fc"], name="fc7")(x)
    x = L.Activation("relu", name="fc7_relu")(x)
    x = L.Dense(classes, name="fc8")(x)
    x = L.Activation("softmax", name="fc8_softmax")(x)
    return keras.Model(inputs, x, name="vggface_vgg16")


def keras_vggface_preprocess(images_rgb: np.ndarray) -> np.ndarray:
    x = np.asarray(images_rgb, np.float32)[..., ::-1].copy()
    x -= np.asarray(VGGFACE_MEAN_BGR, np.float32)
    return x


def deepface_base(channels: dict, classes: int = 2622) -> "keras.Sequential":
    """deepface's VGGFace.base_model() with ``channels`` per block."""
    model = keras.Sequential()
    model.add(keras.Input((224, 224, 3)))
    for block, count in BLOCKS:
        for _ in range(count):
            model.add(L.ZeroPadding2D((1, 1)))
            model.add(L.Conv2D(channels[f"conv{block}"], (3, 3), activation="relu"))
        model.add(L.MaxPooling2D((2, 2), strides=(2, 2)))
    model.add(L.Conv2D(channels["fc"], (7, 7), activation="relu"))
    model.add(L.Dropout(0.5))
    model.add(L.Conv2D(channels["fc"], (1, 1), activation="relu"))
    model.add(L.Dropout(0.5))
    model.add(L.Conv2D(classes, (1, 1)))
    model.add(L.Flatten())
    model.add(L.Activation("softmax"))
    return model


def deepface_gender(channels: dict) -> "keras.Model":
    """deepface's Gender.load_model() structure: 2 filters on the base model's layers[-4]."""
    base = deepface_base(channels)
    x = L.Conv2D(2, (1, 1), name="predictions")(base.layers[-4].output)
    x = L.Flatten()(x)
    x = L.Activation("softmax")(x)
    return keras.Model(inputs=base.inputs, outputs=x)


def deepface_preprocess(images_rgb: np.ndarray) -> np.ndarray:
    return np.asarray(images_rgb, np.float32)[..., ::-1] / np.float32(255.0)


DEEPFACE_GENDER_LABELS = ("Woman", "Man")  # deepface/models/demography/Gender.py

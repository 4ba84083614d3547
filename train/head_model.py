"""The gender head: a small Keras MLP trained on backbone descriptors.

Default (the 2x16 head of the original VGG-Face gender projects): Dense(16, relu) -> Dropout(0.4) -> Dense(16, relu) ->
Dropout(0.4) -> Dense(2, softmax); ``hidden=[]`` is logistic regression.

Descriptors are standardised with the training split's mean and std *outside* the
model, and the standardisation is folded into the first Dense layer before saving
(``W' = W / std[:, None]``, ``b' = b - (mean / std) @ W``, exact), so the saved
:class:`HeadSpec` takes raw descriptors and export needs nothing but dense layers.

TensorFlow is imported inside the functions that need it. Training is seeded
(``keras.utils.set_random_seed`` + op determinism): the same seed and data give the
same weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from gender_cli.atomic import names_file
from gender_cli.tf_quiet import import_keras, native_stderr_silenced

STD_FLOOR = 1e-6  # descriptor dimensions that never vary (dead ReLUs) are left unscaled


@dataclass
class HeadConfig:
    hidden: list[int] = field(default_factory=lambda: [16, 16])
    dropout: float = 0.4
    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    patience: int = 10
    seed: int = 0


@dataclass
class Standardizer:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> "Standardizer":
        x = np.asarray(x, np.float64)
        std = x.std(axis=0)
        std[std < STD_FLOOR] = 1.0
        return cls(x.mean(axis=0), std)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, np.float64) - self.mean) / self.std).astype(np.float32)

    def fold(self, kernel: np.ndarray, bias: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """First-layer weights that take raw descriptors: exact in real arithmetic."""
        kernel = np.asarray(kernel, np.float64)
        folded_kernel = kernel / self.std[:, None]
        folded_bias = np.asarray(bias, np.float64) - (self.mean / self.std) @ kernel
        return folded_kernel.astype(np.float32), folded_bias.astype(np.float32)


def class_weights(y: np.ndarray, n_classes: int = 2) -> dict[int, float]:
    """n / (k * n_c): each class contributes equally to the loss."""
    counts = np.bincount(np.asarray(y, int), minlength=n_classes)
    return {c: float(len(y) / (n_classes * counts[c])) if counts[c] else 0.0 for c in range(n_classes)}


def build_head(input_dim: int, hidden: list[int], dropout: float, n_classes: int = 2, name: str = "gender_head"):
    keras = import_keras()

    inputs = keras.Input((input_dim,), name="descriptor")
    x = inputs
    for i, units in enumerate(hidden):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{i}")(x)
        if dropout > 0:
            x = keras.layers.Dropout(dropout, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(n_classes, activation="softmax", name=f"dense_{len(hidden)}")(x)
    return keras.Model(inputs, outputs, name=name)


def save_keras_head(path, spec, kernels, biases):
    """The saved head (a HeadSpec, taking raw descriptors) as a Keras model file."""
    model = build_head(spec.input_dim, spec.hidden, spec.dropout, len(spec.labels))
    return save_keras_model(path, model, kernels, biases)


def save_keras_model(path, model, kernels, biases):
    """Set ``model``'s Dense layers (in order) to ``kernels``/``biases`` and save it."""
    dense = [layer for layer in model.layers if layer.__class__.__name__ == "Dense"]
    for layer, kernel, bias in zip(dense, kernels, biases):
        layer.set_weights([kernel, bias])
    with names_file(path):
        model.save(path)
    return path


def seed_everything(seed: int) -> None:
    keras = import_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # older TF without the switch: seeding alone is the best we can do
        pass


@dataclass
class TrainedHead:
    model: object  # keras.Model (on standardised inputs)
    standardizer: Standardizer
    history: dict  # per-epoch lists: loss, accuracy, val_loss, val_accuracy, learning_rate
    best_epoch: int  # 1-based epoch whose weights were kept
    epochs_run: int

    def dense_weights(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Kernels and biases of the Dense layers, the first one folded to take raw descriptors."""
        dense = [layer for layer in self.model.layers if layer.__class__.__name__ == "Dense"]
        kernels = [np.asarray(layer.get_weights()[0], np.float32) for layer in dense]
        biases = [np.asarray(layer.get_weights()[1], np.float32) for layer in dense]
        kernels[0], biases[0] = self.standardizer.fold(kernels[0], biases[0])
        return kernels, biases


def train_head(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: HeadConfig,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> TrainedHead:
    """Fit the head: Adam, class weights, early stopping on val loss (best weights kept)."""
    keras = import_keras()

    seed_everything(config.seed)
    model = build_head(x_train.shape[1], list(config.hidden), config.dropout)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return fit_head(model, x_train, np.asarray(y_train, np.int64), x_val, np.asarray(y_val, np.int64), config,
                    class_weight=class_weights(y_train), on_epoch=on_epoch)


def fit_head(
    model,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    config: HeadConfig,
    monitor: str = "val_loss",
    class_weight: dict | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> TrainedHead:
    """Fit a compiled head on standardised descriptors: early stopping on ``monitor``, a
    figure to minimise (best weights kept), learning rate halved when it stalls."""
    keras = import_keras()

    standardizer = Standardizer.fit(x_train)
    callbacks = [
        keras.callbacks.EarlyStopping(monitor=monitor, mode="min", patience=config.patience,
                                      restore_best_weights=True),
        keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, mode="min", factor=0.5, patience=max(1, config.patience // 2), min_lr=1e-6
        ),
    ]
    if on_epoch is not None:
        callbacks.append(keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: on_epoch(e, logs)))
    with native_stderr_silenced():  # TF logs a harmless NodeDef error on the first fit
        fit = model.fit(
            standardizer.apply(x_train),
            y_train,
            validation_data=(standardizer.apply(x_val), y_val),
            epochs=config.epochs,
            batch_size=config.batch_size,
            class_weight=class_weight,
            callbacks=callbacks,
            shuffle=True,
            verbose=0,
        )
    history = {k: [float(v) for v in values] for k, values in fit.history.items()}
    watched = history.get(monitor, [0.0])
    return TrainedHead(
        model=model,
        standardizer=standardizer,
        history=history,
        best_epoch=int(np.argmin(watched)) + 1,
        epochs_run=len(watched),
    )


def head_logits(kernels: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The saved head's forward pass in NumPy up to its softmax."""
    h = np.asarray(x, np.float32)
    for i, (kernel, bias) in enumerate(zip(kernels, biases)):
        h = h @ kernel + bias
        if i < len(kernels) - 1:
            h = np.maximum(h, 0)
    return h


def head_probabilities(kernels: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The saved head's forward pass in NumPy (what the exported graph computes)."""
    h = head_logits(kernels, biases, x)
    h = h - h.max(axis=1, keepdims=True)
    e = np.exp(h)
    return e / e.sum(axis=1, keepdims=True)

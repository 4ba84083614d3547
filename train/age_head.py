"""The age head: DEX (Rothe, Timofte and Van Gool, "DEX: Deep EXpectation of apparent
age from a single image", ICCV 2015 workshops) on cached backbone descriptors.

DEX treats age as classification over the whole years 0-100 (``contract.AGE_RANGE``,
101 classes) and reports the expected value of the softmax, ``sum_k p_k * age_k``, as
the estimate: the rounding of the classes disappears in the expectation. DEX replaced
VGG-16's last layer with a 101-way one and fine-tuned the whole network; here the
backbone stays frozen (its descriptors are cached and shared with the gender head), so
the head is a small MLP: Dense(h, relu) -> Dropout -> ... -> Dense(101, softmax), with
``hidden`` and ``dropout`` configurable like the gender head's; ``hidden=[]`` is DEX's
single new layer on the descriptor.

Targets are ages in years (decimals allowed); each loss in :data:`AGE_LOSSES` turns
them into a target distribution. Training reuses the gender head's machinery
(``head_model``): the same seeding, standardisation folded into the first Dense layer,
Adam, early stopping with the best weights kept. TensorFlow is imported inside the
functions that need it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from gender_cli.contract import AGE_RANGE
from gender_cli.head_spec import class_ages
from gender_cli.tf_quiet import import_keras
from gender_cli.train.head_model import (
    HeadConfig, TrainedHead, build_head, fit_head, head_probabilities, save_keras_model, seed_everything,
)

MONITOR = "val_mae_years"  # early stopping and the kept epoch follow the validation MAE
SOFT_SIGMA = 2.0  # years: width of the Gaussian target of the "soft" loss


@dataclass(frozen=True)
class AgeLoss:
    name: str
    help: str
    target: Callable  # (ages in years [N], class ages [K]) -> target distribution [N, K], NumPy


def _one_hot(ages: np.ndarray, classes: np.ndarray) -> np.ndarray:
    index = np.rint(ages - classes[0]).astype(int)  # ages were checked to lie in the range
    return np.eye(len(classes), dtype=np.float32)[index]


def _gaussian(ages: np.ndarray, classes: np.ndarray) -> np.ndarray:
    weights = np.exp(-0.5 * ((classes[None, :] - ages[:, None]) / SOFT_SIGMA) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


AGE_LOSSES = {
    loss.name: loss
    for loss in (
        AgeLoss("dex", "cross-entropy on the age rounded to a whole year (DEX)", _one_hot),
        AgeLoss("soft", f"cross-entropy on a Gaussian around the age (sigma {SOFT_SIGMA:g} years)", _gaussian),
    )
}
DEFAULT_AGE_LOSS = "dex"


@dataclass
class AgeHeadConfig(HeadConfig):
    hidden: list[int] = field(default_factory=lambda: [64])
    dropout: float = 0.2
    loss: str = DEFAULT_AGE_LOSS
    ages: tuple[int, int] = AGE_RANGE


def expected_age(probabilities: np.ndarray, ages: tuple[int, int] = AGE_RANGE) -> np.ndarray:
    """DEX's estimate: the expected value of the softmax over the class ages, [N] years."""
    return np.asarray(probabilities, np.float32) @ class_ages(ages)


def age_estimates(kernels: list[np.ndarray], biases: list[np.ndarray], x: np.ndarray,
                  ages: tuple[int, int] = AGE_RANGE) -> np.ndarray:
    """The saved age head's forward pass in NumPy (what the exported graph computes)."""
    return expected_age(head_probabilities(kernels, biases, x), ages)


def mae_years_metric(ages: tuple[int, int]):
    """A Keras metric: mean |expected age - true age| in years, the true age being the
    mean of the target distribution (exact for the one-hot and Gaussian targets away
    from the range's ends)."""
    keras = import_keras()
    values = keras.ops.convert_to_tensor(class_ages(ages))

    def mae_years(y_true, y_pred):
        truth = keras.ops.sum(y_true * values, axis=-1)
        guess = keras.ops.sum(y_pred * values, axis=-1)
        return keras.ops.mean(keras.ops.abs(guess - truth))

    return mae_years


def train_age_head(
    x_train: np.ndarray,
    age_train: np.ndarray,
    x_val: np.ndarray,
    age_val: np.ndarray,
    config: AgeHeadConfig,
) -> TrainedHead:
    """Fit the age head on descriptors and ages in years; the kept epoch has the lowest
    validation MAE."""
    keras = import_keras()

    loss = AGE_LOSSES[config.loss]
    classes = class_ages(config.ages)
    seed_everything(config.seed)
    model = build_head(x_train.shape[1], list(config.hidden), config.dropout, len(classes), name="age_head")
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss="categorical_crossentropy",
        metrics=[mae_years_metric(config.ages)],
    )
    return fit_head(
        model, x_train, loss.target(np.asarray(age_train, np.float64), classes),
        x_val, loss.target(np.asarray(age_val, np.float64), classes), config, monitor=MONITOR,
    )


def build_keras_age_head(spec):
    """The age head as a Keras model from raw descriptors to the expected age (N, 1) in
    years: the softmax model plus a fixed Dense layer holding the class ages."""
    keras = import_keras()

    classifier = build_head(spec.input_dim, spec.hidden, spec.dropout, len(spec.age_values()), name="age_head")
    expectation = keras.layers.Dense(1, use_bias=False, trainable=False, name="expected_age")
    return keras.Model(classifier.inputs, expectation(classifier.outputs[0]), name="age_head")


def save_keras_age_head(path, spec, kernels, biases):
    """The saved age head (an AgeHeadSpec) as a Keras model file giving years."""
    model = build_keras_age_head(spec)
    model.get_layer("expected_age").set_weights([spec.age_values()[:, None]])
    return save_keras_model(path, model, kernels, biases)

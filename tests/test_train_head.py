"""The head: standardisation folded exactly, Keras and NumPy agree, seeded training repeats."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cli.train.head_model import (
    HeadConfig, Standardizer, class_weights, head_probabilities, train_head,
)


def test_fold_is_exact():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 3, (50, 6)) * np.array([1, 10, 0.1, 1, 1, 0])  # one constant column
    st = Standardizer.fit(x)
    kernel, bias = rng.normal(size=(6, 4)), rng.normal(size=4)
    folded_kernel, folded_bias = st.fold(kernel, bias)
    np.testing.assert_allclose(x @ folded_kernel + folded_bias, st.apply(x) @ kernel + bias, rtol=1e-4, atol=1e-4)


def test_class_weights_balance_the_loss():
    w = class_weights(np.array([0] * 30 + [1] * 10))
    assert w[0] * 30 == pytest.approx(w[1] * 10)
    assert w == {0: pytest.approx(40 / 60), 1: pytest.approx(40 / 20)}


@pytest.fixture(scope="module")
def toy_data():
    rng = np.random.default_rng(1)
    y = np.r_[np.zeros(60, int), np.ones(60, int)]
    x = rng.normal(0, 1, (120, 5)) * 4 + 20
    x[:, 0] += y * 30  # one informative column, off-centre and badly scaled
    order = rng.permutation(120)
    return x[order].astype(np.float32), y[order]


def test_saved_weights_reproduce_keras_and_learn(toy_data):
    x, y = toy_data
    config = HeadConfig(hidden=[8], dropout=0.2, epochs=25, patience=5, learning_rate=2e-2, seed=0)
    trained = train_head(x[:80], y[:80], x[80:], y[80:], config)
    kernels, biases = trained.dense_weights()
    assert [k.shape for k in kernels] == [(5, 8), (8, 2)]
    keras_p = trained.model.predict(trained.standardizer.apply(x), verbose=0)
    np.testing.assert_allclose(head_probabilities(kernels, biases, x), keras_p, atol=1e-5)
    assert (head_probabilities(kernels, biases, x[80:]).argmax(1) == y[80:]).mean() >= 0.9
    assert 1 <= trained.best_epoch <= trained.epochs_run <= 25
    assert set(trained.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_same_seed_same_weights_and_logistic_regression(toy_data):
    x, y = toy_data
    config = HeadConfig(hidden=[], dropout=0.0, epochs=8, patience=3, seed=7)
    a = train_head(x[:80], y[:80], x[80:], y[80:], config).dense_weights()
    b = train_head(x[:80], y[:80], x[80:], y[80:], config).dense_weights()
    assert len(a[0]) == 1 and a[0][0].shape == (5, 2)  # hidden [] = logistic regression
    for u, v in zip(a[0] + a[1], b[0] + b[1]):
        np.testing.assert_array_equal(u, v)

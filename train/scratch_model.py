"""The compact CNN that ``train --from-scratch`` trains end to end, as Keras models.

The network (:func:`build_trunk`) takes the contract's input, uint8 RGB ``(N, H, W, 3)``,
and scales it to 0..1 itself, so the exported graph holds its own preprocessing. Then
one block per entry of ``widths``: ``convs_per_block`` times (3x3 convolution without
bias -> batch normalization -> ReLU), then 2x2 max pooling; the maps are flattened,
go through dropout and one dense layer with ReLU, whose output is the descriptor
(``contract`` descriptor ``penultimate``). The heads are single dense layers with a
softmax on the descriptor (gender: 2 classes; age: DEX's 101 ages), the same dense
heads as the descriptor route's with no hidden layer, so the run folder holds them as
``head.json`` / ``age_head.json`` and export emits them unchanged.

Training wraps the trunk in one model per stage (:func:`stage_model`): the augmented
stage puts the Keras preprocessing layers (:func:`build_augmentation`: flip, small
rotation, zoom, contrast, brightness) between the scaling and the convolutions; the
plain stage takes the images as they are and puts a dropout layer in front of the
heads. Both share the same layer objects, so stage two continues stage one's weights.
TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gender_cli.contract import AGE_HEAD, GENDER_HEAD, SCRATCH_DESCRIPTOR, descriptor_spec
from gender_cli.tf_quiet import import_keras

DESCRIPTOR_LAYER = descriptor_spec(SCRATCH_DESCRIPTOR).layer  # the trunk's last layer
SCALE = 1 / 255  # uint8 -> 0..1, inside the graph
SCALE_LAYER = "scale"
HEAD_LAYERS = {GENDER_HEAD: "gender", AGE_HEAD: "age"}  # Keras layer (and output) name per head
# options (TrainOptions fields) of the descriptor route that a network trained from the images has no use for
NOT_FROM_SCRATCH = ("weights", "descriptor", "head_batch", "hidden", "dropout", "age_hidden", "age_dropout",
                    "patience")


@dataclass(frozen=True)
class Stage:
    """One training stage: the reference project's two, as data."""

    name: str
    augment: bool  # Keras preprocessing layers in front of the trunk
    head_dropout: float  # dropout between descriptor and heads
    lr_patience: int  # ReduceLROnPlateau: epochs without improvement before the rate halves
    stop_patience: int  # EarlyStopping: epochs without improvement before the stage ends


STAGES = (
    Stage("augmented", augment=True, head_dropout=0.0, lr_patience=3, stop_patience=5),
    Stage("plain", augment=False, head_dropout=0.3, lr_patience=2, stop_patience=3),
)


@dataclass
class Augmentation:
    """Keras preprocessing layers of the augmented stage, on images scaled to 0..1."""

    flip: bool = True  # horizontal
    rotation: float = 0.03  # fraction of a full turn either way (0.03: about 11 degrees)
    zoom: float = 0.1  # fraction of the side, in or out
    contrast: float = 0.2
    brightness: float = 0.15  # fraction of the value range, up or down


@dataclass
class ScratchConfig:
    """Everything that shapes and trains the network (recorded in ``scratch.json``)."""

    input_size: int = 64  # square side in pixels; docs/decisions.md has the measured choice
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])  # channels per block
    convs_per_block: int = 1
    dense: int = 128  # descriptor width
    dropout: float = 0.3  # before the dense layer, both stages (training only)
    batch_size: int = 64
    epochs: int = 40  # most epochs per stage (early stopping usually ends a stage sooner; docs/decisions.md)
    augmentation: Augmentation = field(default_factory=Augmentation)
    age_loss_weight: float = 0.1  # the 101-way age loss is larger than the gender loss; keep gender first

    def describe(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ScratchConfig":
        data = dict(data)
        data["augmentation"] = Augmentation(**data.get("augmentation", {}))
        return cls(**data)


def build_trunk(config: ScratchConfig, seed: int = 0):
    """uint8 images -> descriptor (N, dense), one chain of layers (the stages call them in order)."""
    keras = import_keras()

    layers = keras.layers
    side = int(config.input_size)
    images = keras.Input((side, side, 3), dtype="uint8", name="images")
    x = layers.Rescaling(SCALE, name=SCALE_LAYER)(images)
    initializer = 0
    for block, width in enumerate(config.widths, start=1):
        for conv in range(1, config.convs_per_block + 1):
            name = f"block{block}_conv{conv}"
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=name,
                              kernel_initializer=keras.initializers.HeNormal(seed + initializer))(x)
            initializer += 1
            x = layers.BatchNormalization(name=f"{name}_bn")(x)
            x = layers.ReLU(name=f"{name}_relu")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(config.dropout, seed=seed, name="dropout")(x)
    x = layers.Dense(config.dense, activation="relu", name=DESCRIPTOR_LAYER,
                     kernel_initializer=keras.initializers.HeNormal(seed + initializer))(x)
    return keras.Model(images, x, name="trunk")


def build_augmentation(augmentation: Augmentation, seed: int = 0):
    """The augmented stage's Keras preprocessing layers (identity outside training)."""
    keras = import_keras()

    layers = keras.layers
    steps = []
    if augmentation.flip:
        steps.append(layers.RandomFlip("horizontal", seed=seed, name="flip"))
    if augmentation.rotation:
        steps.append(layers.RandomRotation(augmentation.rotation, fill_mode="reflect", seed=seed + 1,
                                           name="rotation"))
    if augmentation.zoom:
        steps.append(layers.RandomZoom(augmentation.zoom, fill_mode="reflect", seed=seed + 2, name="zoom"))
    if augmentation.contrast:
        steps.append(layers.RandomContrast(augmentation.contrast, seed=seed + 3, name="contrast"))
    if augmentation.brightness:
        steps.append(layers.RandomBrightness(augmentation.brightness, value_range=(0.0, 1.0), seed=seed + 4,
                                             name="brightness"))
    return keras.Sequential(steps, name="augmentation")


def describe_augmentation(augmentation: Augmentation) -> str:
    """``horizontal flip, rotation up to 0.03 turn, ...``: the layers in use."""
    parts = ["horizontal flip"] if augmentation.flip else []
    parts += [f"{name} up to {value:g}{unit}" for name, value, unit in (
        ("rotation", augmentation.rotation, " turn"), ("zoom", augmentation.zoom, ""),
        ("contrast", augmentation.contrast, ""), ("brightness", augmentation.brightness, "")) if value]
    return ", ".join(parts) or "none"


def build_heads(dense: int, heads: dict[str, int], seed: int = 0) -> dict:
    """One Dense + softmax layer per head (``{task: classes}``), keyed by task."""
    keras = import_keras()

    layers = {task: keras.layers.Dense(classes, activation="softmax", name=HEAD_LAYERS[task],
                                       kernel_initializer=keras.initializers.GlorotUniform(seed + i))
              for i, (task, classes) in enumerate(heads.items())}
    for layer in layers.values():
        layer.build((None, dense))
    return layers


@dataclass
class ScratchNetwork:
    """The layers training shares between its stages (trained in place)."""

    config: ScratchConfig
    trunk: object  # keras.Model: uint8 images -> descriptor
    heads: dict  # task -> keras Dense layer on the descriptor
    augmentation: object  # keras.Sequential

    @classmethod
    def build(cls, config: ScratchConfig, heads: dict[str, int], seed: int = 0) -> "ScratchNetwork":
        return cls(config, build_trunk(config, seed), build_heads(config.dense, heads, seed),
                   build_augmentation(config.augmentation, seed))

    def stage_model(self, stage: Stage, seed: int = 0):
        """The model one stage trains: images -> {task: probabilities}."""
        keras = import_keras()

        images = keras.Input(self.trunk.input.shape[1:], dtype="uint8", name="images")
        x = images
        for layer in self.trunk.layers[1:]:  # the chain after the input layer
            x = layer(x)
            if layer.name == SCALE_LAYER and stage.augment:
                x = self.augmentation(x)
        if stage.head_dropout:
            x = keras.layers.Dropout(stage.head_dropout, seed=seed, name="head_dropout")(x)
        return keras.Model(images, {task: layer(x) for task, layer in self.heads.items()}, name=f"stage_{stage.name}")

    def head_weights(self, task: str):
        """(kernels, biases) of a head as the dense-head files keep them: one layer each."""
        kernel, bias = self.heads[task].get_weights()
        return [kernel], [bias]

    def weights(self) -> list:
        """Every weight of trunk and heads (a copy), for :meth:`set_weights`."""
        return [self.trunk.get_weights(), *(layer.get_weights() for layer in self.heads.values())]

    def set_weights(self, weights: list) -> None:
        self.trunk.set_weights(weights[0])
        for layer, values in zip(self.heads.values(), weights[1:]):
            layer.set_weights(values)

    def descriptors(self, images, batch_size: int):
        """The trunk's output for uint8 ``images``, in inference mode."""
        import numpy as np

        from gender_cli.tf_quiet import native_stderr_silenced

        with native_stderr_silenced():  # TF logs a harmless NodeDef note on the first predict
            return np.asarray(self.trunk.predict(images, batch_size=batch_size, verbose=0), np.float32)

    def parameters(self) -> int:
        return int(self.trunk.count_params() + sum(layer.count_params() for layer in self.heads.values()))

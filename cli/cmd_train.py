"""``gender-cli train``: options in, :func:`gender_cli.train.train.train` out, paths printed."""

from __future__ import annotations

from pathlib import Path

import click

from gender_cli.cli.options import (
    batch_option, check_output_location, default_of, detect_options, device_option, parsed_by, quiet_option,
    request_errors, workers_option,
)
from gender_cli.contract import AGE_RANGE, LAYER_DESCRIPTORS
from gender_cli.train.age_head import AGE_LOSSES
from gender_cli.train.datasets import LAYOUT_CHOICES
from gender_cli.train.scratch_model import ScratchConfig
from gender_cli.train.tasks import TASK_CHOICES
from gender_cli.train.train import TrainOptions
from gender_cli.cli.help_format import ERRORS, OK, epilog
from gender_cli.cli.messages import age_summary_line, gender_summary_line, warn_if_standin


def _default(name: str):
    """TrainOptions' default for ``name``, as the option's text when it is a list."""
    value = default_of(TrainOptions, name)
    return ",".join(f"{v:g}" for v in value) if isinstance(value, (list, tuple)) else value


SCRATCH_DEFAULTS = ScratchConfig()
SCRATCH_ONLY = ("input_size", "widths")

def parse_hidden(ctx, param, value: str) -> list[int]:
    text = (value or "").strip()
    if not text:
        return []
    try:
        sizes = [int(p) for p in text.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated layer sizes like 16,16 (or '' for none), got {value!r}") from None
    if any(s < 1 for s in sizes):
        raise click.BadParameter(f"layer sizes must be >= 1, got {value!r}")
    return sizes


def scratch_options(fn):
    """``--from-scratch`` and the settings of the network it trains."""
    options = [
        click.option("--from-scratch", is_flag=True,
                     help="Train a compact CNN end to end on the images instead of heads on a converted "
                     "network's descriptors (no converted weights needed): conv-BN-ReLU-maxpool blocks and a "
                     "dense descriptor layer, a stage with augmentation (flip, rotation, zoom, contrast, "
                     "brightness) then one without and with dropout before the heads, seeded; one line per "
                     "epoch. --epochs is then the most epochs per stage (default "
                     f"{SCRATCH_DEFAULTS.epochs}), --lr Adam's starting rate."),
        click.option("--input-size", type=click.IntRange(16, 512), default=None,
                     help=f"--from-scratch: the network's square input side in pixels (default "
                     f"{SCRATCH_DEFAULTS.input_size})."),
        click.option("--widths", default=None, callback=parse_hidden,
                     help="--from-scratch: channels of each convolution block, one block each, e.g. "
                     + ",".join(str(w) for w in SCRATCH_DEFAULTS.widths) + " (the default)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def _scratch_config(from_scratch: bool, epochs: int, input_size: int | None, widths: list[int] | None):
    """The from-scratch settings the options ask for, None without --from-scratch; a usage
    error for a setting of the network without it (train() itself refuses the descriptor
    route's options with it)."""
    context = click.get_current_context()
    given = {name for name in (*SCRATCH_ONLY, "epochs")
             if context.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE}
    if not from_scratch:
        if given & set(SCRATCH_ONLY):
            raise click.UsageError(f"--{sorted(given & set(SCRATCH_ONLY))[0].replace('_', '-')} applies to "
                                   "--from-scratch only")
        return None
    if "widths" in given and not widths:
        raise click.BadParameter("give at least one block", param_hint="--widths")
    config = ScratchConfig()
    if "epochs" in given:  # else the stages' own default, not the heads'
        config.epochs = epochs
    if input_size is not None:
        config.input_size = input_size
    if widths:
        config.widths = widths
    return config


@click.command(
    "train",
    epilog=epilog("gender-cli train data/ --task both\n  gender-cli train data/ --from-scratch", {**OK, **ERRORS}),
)
@click.argument("data", type=click.Path(path_type=Path), default=str(_default("data")), required=False)
@click.option("-o", "--output", "run_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run folder to write. Default: the next $GENDER_CLI_HOME/runs/NNN.")
@click.option("--weights", type=click.Path(path_type=str), default=None,
              help="Backbone weights: a converted folder (network/) or a weights file that "
              "'gender-cli convert' reads. Default: the workspace's 'gender-cli convert' output.")
@click.option("--layout", type=click.Choice(LAYOUT_CHOICES), default=_default("layout"), show_default=True,
              help="How DATA is labelled: class folders male/ female/; agegender_cleaned "
              "combined/{aligned,valid}/NN_F|M; UTKFace names age_gender_race_date.jpg "
              "(0 male, 1 female); csv manifest path,gender[,split][,age] (0 male, 1 female). "
              "'auto' detects it.")
@click.option("--task", type=click.Choice(TASK_CHOICES), default=_default("task"), show_default=True,
              help="Heads to train on the same descriptors and splits: gender, age (DEX: softmax over "
              "the ages {}-{}, its expected value in years) or both. 'auto': both when every image "
              "has an age, else gender.".format(*AGE_RANGE))
@click.option("--descriptor", type=click.Choice(list(LAYER_DESCRIPTORS)), default=_default("descriptor"),
              help="Backbone layer the head is trained on (default: the network's own): "
              + "; ".join(f"{d.name}: {d.help}" for d in LAYER_DESCRIPTORS.values()) + ".")
@click.option("--split", "fractions", default=_default("fractions"), show_default=True,
              callback=parsed_by("gender_cli.train.splits", "parse_fractions"),
              help="Train,validation,test fractions of a stratified, seeded split (a manifest's "
              "split column wins over it).")
@click.option("--splits", "splits_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Reuse the splits.csv of an earlier run (same images, same splits).")
@click.option("--agegender-split", is_flag=True,
              help="agegender layout: aligned/ is train (validation carved from it), valid/ is test.")
@click.option("--seed", type=int, default=_default("seed"), show_default=True,
              help="Seed of the split and of the head's training; same seed, same metrics.")
@click.option("--epochs", type=click.IntRange(1, 100000), default=_default("epochs"), show_default=True,
              help="Most epochs; early stopping on validation loss usually ends sooner. With --from-scratch: "
              f"most epochs per stage, default {SCRATCH_DEFAULTS.epochs}.")
@click.option("--head-batch", type=click.IntRange(1, 65536), default=_default("head_batch"), show_default=True,
              help="Descriptors per training step of the head (--batch is images per inference batch).")
@click.option("--hidden", default=_default("hidden"), show_default=True, callback=parse_hidden,
              help="Hidden layer sizes of the head (ReLU); '' gives logistic regression.")
@click.option("--dropout", type=click.FloatRange(0.0, 0.95), default=_default("dropout"), show_default=True,
              help="Dropout after each hidden layer (training only).")
@click.option("--age-hidden", default=_default("age_hidden"), show_default=True,
              callback=parse_hidden,
              help="Hidden layer sizes of the age head (ReLU); '' puts the 101-way softmax straight on "
              "the descriptor, as DEX's new last layer.")
@click.option("--age-dropout", type=click.FloatRange(0.0, 0.95), default=_default("age_dropout"),
              show_default=True, help="Dropout after each hidden layer of the age head (training only).")
@click.option("--age-loss", type=click.Choice(list(AGE_LOSSES)), default=_default("age_loss"), show_default=True,
              help="Training loss of the age head: "
              + "; ".join(f"{loss.name}: {loss.help}" for loss in AGE_LOSSES.values()) + ".")
@click.option("--lr", "learning_rate", type=click.FloatRange(0.0, min_open=True), default=_default("learning_rate"),
              show_default=True, help="Adam learning rate (halved when validation loss stalls).")
@click.option("--patience", type=click.IntRange(1, 10000), default=_default("patience"), show_default=True,
              help="Epochs without validation-loss improvement before stopping (best weights kept).")
@scratch_options
@detect_options(max_faces=False)
@batch_option(_default("extract_batch"))
@workers_option
@device_option
@quiet_option
def train(data, run_dir, weights, layout, descriptor, task, fractions, splits_file, agegender_split, seed, epochs,
          head_batch, hidden, dropout, age_hidden, age_dropout, age_loss, learning_rate, patience, from_scratch,
          input_size, widths, detect, batch, workers, device, quiet):
    """Train the gender head (and the age head) on backbone descriptors of DATA (default ./data).

    \b
    Reads the labelled images, splits them (stratified, seeded; splits.csv),
    extracts backbone descriptors through ONNX (cached in the workspace, resumable),
    trains small Keras heads with early stopping on the same descriptors and
    splits: gender (calibrated by Platt scaling on the validation split, with the
    operating point chosen there folded in, so a label is the class whose
    probability is >= 0.5) and, with ages, age; writes metrics, predictions and plots to the run folder, and
    exports the fp32 classifier, one graph with every head, so 'gender-cli
    classify' gives gender and age per file from one pass right away.
    With --detect each image stands for its largest face, found, aligned and
    cropped first; the settings travel in the model for 'classify --detect'.
    With --from-scratch no converted network is used: a compact CNN is trained
    end to end on the images (decoded once, in parallel), in two seeded stages,
    and exported through tf2onnx into the same one graph; the heads, calibration,
    report and files are the same.
    """
    from gender_cli.infer.detect import FaceSettings
    from gender_cli.train.train import TrainOptions, train

    scratch = _scratch_config(from_scratch, epochs, input_size, widths)
    if run_dir is not None:
        check_output_location(run_dir, "--output")
    source = click.get_current_context().get_parameter_source("data")
    if source == click.core.ParameterSource.DEFAULT and not Path(data).exists():
        raise click.ClickException(
            f"no ./{data} folder here; give the labelled images: gender-cli train DATA "
            "(class folders male/ female/, agegender, UTKFace names or a CSV manifest)"
        )
    def log(message: str) -> None:
        if not quiet:
            click.echo(message, err=True)

    options = TrainOptions(
        data=data, run_dir=run_dir, weights=weights, layout=layout, descriptor=descriptor,
        task=task, fractions=fractions, agegender_split=agegender_split, splits_file=splits_file, seed=seed,
        epochs=epochs, head_batch=head_batch, hidden=hidden, dropout=dropout, age_hidden=age_hidden,
        age_dropout=age_dropout, age_loss=age_loss, learning_rate=learning_rate, patience=patience,
        extract_batch=batch, workers=workers, device=device, progress=not quiet,
        faces=FaceSettings.resolve(None, **detect) if detect is not None else None, scratch=scratch,
    )
    with request_errors():
        result = train(options, log=log)
    m = result.metrics
    warn_if_standin(result.standin)
    if m is not None:
        click.echo("gender: test " + gender_summary_line(m))
    if result.age is not None:
        click.echo(age_summary_line(result.age["metrics"], "test"))
    click.echo(f"run folder:   {result.run_dir}")
    click.echo(f"report:       {result.files['report']}")
    for key, name in (("head", "gender head"), ("age_head", "age head")):
        if key in result.files:
            click.echo(f"{name + ':':<14}{result.files[key]}")
    if result.classifier_path:
        click.echo(f"classifier:   {result.classifier_path}  (next: gender-cli classify FOLDER)")

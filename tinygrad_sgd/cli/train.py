"""``python -m tinygrad_sgd train``: the options of the book's training run, and its errors."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..data.mnist import DatasetError, DownloadError, MNISTNotFoundError
from ..train import ACTIVATIONS, COSTS, DATASETS, INITS, OUTPUTS, PRESETS, TrainConfig, train
from ..train.arch import parse_arch
from ..train.run import CONFIG_FIELDS
from ._options import checked


def _sizes(text: str) -> list[int]:
    """``"30"`` -> [30], ``"100,30"`` -> [100, 30], ``""`` -> [] (no hidden layer)."""
    return [int(p) for p in text.split(",")] if text.strip() else []


def _arch(text: str) -> str:
    try:
        parse_arch(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


# Each option accepts exactly what TrainConfig's field of the same name does.
_batch_size = checked(CONFIG_FIELDS["batch_size"], int)
_epochs = checked(CONFIG_FIELDS["epochs"], int)
_learning_rate = checked(CONFIG_FIELDS["lr"], float)
_hidden = checked(CONFIG_FIELDS["hidden"], _sizes)
_seed = checked(CONFIG_FIELDS["seed"], int)
_lmbda = checked(CONFIG_FIELDS["lmbda"], float)
_l1 = checked(CONFIG_FIELDS["l1"], float)
_dropout = checked(CONFIG_FIELDS["dropout"], float)
_early_stopping = checked(CONFIG_FIELDS["early_stopping"], int)
_lr_schedule = checked(CONFIG_FIELDS["lr_schedule"], str)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` sub-command's options (defaults: the book's chapter 1 experiment)."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.description = (
        "Train the book's network of sigmoid neurons with mini-batch SGD and print, after every\n"
        "epoch, 'Epoch k: correct / total' on the evaluation set (then the costs and seconds).\n\n"
        "  chapter 1 (default): --cost quadratic --init standard --lr 3.0\n"
        "  chapter 3:           --cost cross-entropy --init scaled --lr 0.5\n"
        "  the book's MNIST run: --dataset mnist --hidden 30 --epochs 30 --batch-size 10 --lr 3.0"
        "\n\n"
        "presets (--preset NAME; options given explicitly win):\n"
        + "\n".join(f"  {name:<18} {p.about}" for name, p in PRESETS.items())
    )
    a = parser.add_argument
    a(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="digits: 8x8 digits shipped in the package (offline); mnist: MNIST 28x28 "
        "(read from --data-dir or the cache, downloaded if absent) (default: digits)",
    )
    a(
        "--data-dir",
        metavar="DIR",
        default=None,
        help="folder holding the MNIST files (default: the cache folder)",
    )
    a(
        "--no-download",
        action="store_true",
        help="never download MNIST; fail with instructions if it is not on disk",
    )
    a(
        "--hidden",
        type=_hidden,
        default=None,
        metavar="SIZES",
        help="hidden layer sizes, comma-separated (default: 30, the book's [n, 30, 10])",
    )
    a(
        "--arch",
        type=_arch,
        default=None,
        metavar="SPEC",
        help="the hidden layers as a comma-separated list instead of --hidden (chapter 6): "
        "convCxK[sS][pP] (C feature maps of KxK kernels, stride S, padding P), poolK (KxK "
        "max-pooling), fcN (N neurons), e.g. conv20x5,pool2,fc100; images are fed to conv "
        "layers as (N, 1, side, side); the output layer follows --output",
    )
    a("--epochs", type=_epochs, default=None, help="epochs in total (default: 30)")
    a(
        "--batch-size",
        type=_batch_size,
        default=None,
        metavar="M",
        help="mini-batch size m (default: 10)",
    )
    a(
        "--lr",
        type=_learning_rate,
        default=None,
        metavar="ETA",
        help="learning rate η (default: 3.0; the book uses 0.5 with cross-entropy)",
    )
    a(
        "--cost",
        choices=COSTS,
        default=None,
        help="quadratic: C = 1/2n Σ‖y − a‖² (chapter 1); cross-entropy: chapter 3's; "
        "log-likelihood: C = −ln a_y, for --output softmax (default: quadratic, or "
        "log-likelihood with --output softmax)",
    )
    a(
        "--output",
        choices=OUTPUTS,
        default=None,
        help="output layer: sigmoid neurons (with the quadratic or cross-entropy cost) or a "
        "softmax (with the log-likelihood cost) (default: sigmoid, or softmax with "
        "--cost log-likelihood)",
    )
    a(
        "--activation",
        choices=ACTIVATIONS,
        default=None,
        help="the hidden neurons' function (default: sigmoid)",
    )
    a(
        "--lmbda",
        type=_lmbda,
        default=None,
        metavar="L",
        help="L2 regularisation λ: C = C₀ + (λ/2n) Σ w², n the training-set size, weights only "
        "(default: 0, off)",
    )
    a(
        "--l1",
        type=_l1,
        default=None,
        metavar="L",
        help="L1 regularisation λ: C = C₀ + (λ/n) Σ |w| (default: 0, off)",
    )
    a(
        "--dropout",
        type=_dropout,
        default=None,
        metavar="P",
        help="drop each hidden neuron with probability P while training (default: 0, off)",
    )
    a(
        "--early-stopping",
        type=_early_stopping,
        default=None,
        metavar="N",
        help="stop after N epochs without a better evaluation accuracy (default: 0, off)",
    )
    a(
        "--lr-schedule",
        type=_lr_schedule,
        default=None,
        metavar="SCHEDULE",
        help="constant, or plateau:N: halve η after N epochs without improvement and stop when "
        "η has fallen to η₀/128 (default: constant)",
    )
    a(
        "--report-gradients",
        action="store_true",
        default=None,
        help="print each epoch the speed of learning ‖∂C/∂bˡ‖ of every hidden layer, averaged "
        "over the mini-batches (chapter 5); --plot draws them, --history records them",
    )
    a(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        metavar="NAME",
        help="the book's settings for a named experiment: " + ", ".join(PRESETS),
    )
    a(
        "--init",
        choices=INITS,
        default=None,
        help="standard: weights and biases N(0, 1) (chapter 1); scaled: weights N(0, 1/n_in) "
        "(chapter 3); xavier (= xavier_normal), he (= kaiming_normal) and the uniform variants: "
        "weights from that scheme, biases 0 (default: standard)",
    )
    a(
        "--seed",
        type=_seed,
        default=None,
        help="seed of the initial weights and the shuffling (default: 0)",
    )
    a(
        "--dtype",
        choices=("float32", "float64"),
        default=None,
        help="floating type of weights and data (default: float32, faster)",
    )
    a(
        "--eval",
        dest="eval_set",
        choices=("test", "validation"),
        default=None,
        help="MNIST set evaluated after each epoch (default: test, as the book)",
    )
    a(
        "--save",
        metavar="PATH",
        default=None,
        help="write a checkpoint (.npz) after every epoch, atomically",
    )
    a(
        "--resume",
        metavar="PATH",
        default=None,
        help="continue the run saved in this checkpoint up to --epochs epochs in total",
    )
    a(
        "--plot",
        metavar="PATH",
        default=None,
        help="write learning curves as a PNG at the end (needs matplotlib: "
        "pip install 'tinygrad-sgd[plot]')",
    )
    a(
        "--history",
        metavar="PATH.json",
        default=None,
        help="after every epoch write network2's lists (evaluation_cost, evaluation_accuracy, "
        "training_cost, training_accuracy; gradient_speeds with --report-gradients) as JSON",
    )
    a(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr during each epoch (default: only on a terminal)",
    )
    a(
        "--eager",
        action="store_true",
        help="run each training step eagerly, building its graph, instead of replaying the "
        "compiled step (tg.compile; the same results, slower)",
    )


def _option(key: str, value: object) -> str:
    """The command-line spelling of a config field's value: ``--hidden 30,30``."""
    flag = "--" + ("eval" if key == "eval_set" else key.replace("_", "-"))
    if value is True:
        return flag
    if isinstance(value, tuple):
        return f"{flag} {','.join(str(v) for v in value)}"
    return f"{flag} {value}"


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given: the preset's, then the explicit options over them, then the
    cost or output that goes with the other when only one was chosen."""
    given = {k: getattr(args, k) for k in CONFIG_FIELDS if getattr(args, k, None) is not None}
    if "hidden" in given and "arch" in given:
        raise ValueError("give the hidden layers with --hidden or --arch, not both")
    settings: dict[str, Any] = {}
    if args.preset is not None:
        preset = PRESETS[args.preset]
        chosen = dict(preset.settings)
        if given.get("dataset", chosen.get("dataset")) == "mnist":
            chosen.update(preset.mnist)
        if "hidden" in given:  # the explicit layers win over the preset's
            chosen.pop("arch", None)
        settings.update(chosen)
        shown = " ".join(_option(k, v) for k, v in chosen.items())
        kept = [k for k in given if k in chosen and given[k] != chosen[k]]
        wins = (
            f" (given explicitly: {', '.join(_option(k, given[k]) for k in kept)})" if kept else ""
        )
        print(f"Preset {args.preset}, {preset.about}: {shown}{wins}")
    settings.update(given)
    if settings.get("output") == "softmax" and "cost" not in settings:
        settings["cost"] = "log-likelihood"
    if settings.get("cost") == "log-likelihood" and "output" not in settings:
        settings["output"] = "softmax"
    return settings


def run_command(args: argparse.Namespace) -> int:
    """Run ``train`` from parsed arguments; returns the exit status."""
    try:
        given = _settings(args)
        if args.resume is not None:
            _model, history = train(
                data_dir=args.data_dir,
                download=not args.no_download,
                save=args.save,
                resume=args.resume,
                plot=args.plot,
                history_path=args.history,
                log=print,
                progress=args.progress,
                eager=args.eager,
                **given,
            )
        else:
            _model, history = train(
                TrainConfig(**given),
                data_dir=args.data_dir,
                download=not args.no_download,
                save=args.save,
                plot=args.plot,
                history_path=args.history,
                log=print,
                progress=args.progress,
                eager=args.eager,
            )
    except (MNISTNotFoundError, DownloadError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ValueError, FloatingPointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # reading the data or a checkpoint, writing an output: name the file
        where = f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)
        print(f"error: {where}", file=sys.stderr)
        return 1
    return 0

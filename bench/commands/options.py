"""Click options shared by the `hwnas` subcommands: one spelling of each name, type and default.

Defaults come from where the code keeps them: the config dataclasses (`TrainConfig` for
training, `TimingConfig` for measurement; both import no torch, so `hwnas --help` stays fast)
and `core.paths` for locations. A command picks the options it needs and may override the help
text (or, where its meaning differs, the default):

    @options.space(help="Space of the supernet.")
    @options.seed()
    @options.train(epochs=1)
"""

from __future__ import annotations

from dataclasses import fields

import click
from hwnas.core.paths import TABLES_DIR
from hwnas.devices.timing import TimingConfig
from hwnas.search.config import TrainConfig

#: the dataset of supernet training and accuracy sources unless --data says otherwise
DEFAULT_DATA = "fashion-mnist"
DATA_HELP = ("fashion-mnist (Debian dataset-fashion-mnist), digits (scikit-learn, fast tests), "
             "cifar10:/path/to/cifar-10-batches-py, folder:/path/to/imagefolder")
EXECUTORS = ("serial", "process", "ray")


def defaults(config_cls) -> dict:
    """Field name -> default of a config dataclass."""
    return {f.name: f.default for f in fields(config_cls)}


_TRAIN = defaults(TrainConfig)
_TIMING = defaults(TimingConfig)


def _chain(*decorators):
    def apply(fn):
        for d in reversed(decorators):
            fn = d(fn)
        return fn

    return apply


# ---- the problem -----------------------------------------------------------------------------
def space(required: bool = True, help: str = "Search space name (see `hwnas spaces`).", **kw):
    return click.option("--space", required=required, help=help, **kw)


def data(default: str = DEFAULT_DATA, help: str = DATA_HELP):
    return click.option("--data", default=default, show_default=True, help=help)


def seed(default: int | None = None, help: str | None = None):
    return click.option("--seed", default=_TRAIN["seed"] if default is None else default, show_default=True,
                        type=int, help=help)


def seeds(default: int = 5, help: str | None = "Seeds 0..K-1 per setting."):
    return click.option("--seeds", default=default, show_default=True, type=int, help=help)


def budget(help: str = "Accuracy queries per run; comma-separated for several."):
    return click.option("--budget", default="100", show_default=True, help=help)


def params(help: str = "METHOD.PARAM=VALUE, e.g. evolution.population=20; repeatable."):
    return click.option("--param", "params", multiple=True, help=help)


def tables_dir(help: str | None = "Where device tables live (DIR/<space>/<device-id>.parquet)."):
    return click.option("--tables-dir", default=TABLES_DIR.as_posix(), show_default=True, help=help)


# ---- outputs and execution -------------------------------------------------------------------
def out_dir(default: str | None = None, help: str | None = "Output folder.", name: str = "--out"):
    """An output folder option (`required` when it has no default)."""
    return click.option(name, default=default, required=default is None, show_default=default is not None,
                        type=click.Path(file_okay=False), help=help)


def out_file(required: bool = True, help: str | None = None):
    """An output file option `--out`."""
    return click.option("--out", "out", required=required, default=None, type=click.Path(dir_okay=False), help=help)


def executor(default: str = "serial", choices=EXECUTORS,
             help: str | None = "Where runs execute: in-process, a process pool, or Ray (RAY_ADDRESS joins a cluster)."):
    typ = click.Choice(list(choices)) if choices else None
    return click.option("--executor", type=typ, default=default, show_default=True, help=help)


def check_workers(ctx, param, value: str | None) -> int | None:
    """A count >= 1, or `auto` (None: the executor uses all cores); anything else is one line
    naming the option (0 used to mean all cores silently)."""
    if value is None or value.strip().lower() == "auto":
        return None
    try:
        n = int(value)
    except ValueError:
        n = None
    if n is None or n < 1:
        raise ValueError(f"--workers {value}: give a number of workers >= 1, or auto for all cores")
    return n


def workers(help: str | None = "Workers for process/ray: a number >= 1, or auto (all cores; the default)."):
    return click.option("--workers", default=None, callback=check_workers, metavar="N|auto",
                        help=help or "Worker processes: a number >= 1, or auto (all cores; the default).")


def resume(help: str = "Continue an existing (or killed) run."):
    return click.option("--resume", is_flag=True, help=help)


def fresh(help: str = "Discard rows already in OUT instead of resuming."):
    return click.option("--fresh", is_flag=True, help=help)


def adopt(help: str = "Take results in OUT that have no provenance.json as made from this run's sources "
                      "(they cannot be checked otherwise)."):
    return click.option("--adopt", is_flag=True, help=help)


# ---- training (defaults: TrainConfig) --------------------------------------------------------
def train(epochs: int | None = None, per_epoch_help: str = "Images per epoch drawn from the train split (default all)."):
    """--epochs --batch-size --lr --train-per-epoch --threads, defaults from TrainConfig
    (`epochs` overrides its default where a command means a shorter run)."""
    return _chain(
        click.option("--epochs", default=_TRAIN["epochs"] if epochs is None else epochs, show_default=True, type=int),
        click.option("--batch-size", default=_TRAIN["batch_size"], show_default=True, type=int),
        click.option("--lr", default=_TRAIN["lr"], show_default=True, type=float),
        click.option("--train-per-epoch", default=_TRAIN["train_per_epoch"], type=int, help=per_epoch_help),
        click.option("--threads", default=_TRAIN["threads"], show_default=True, type=int),
    )


def sampler():
    return _chain(
        click.option("--sampler", type=click.Choice(["uniform", "sandwich"]), default=_TRAIN["sampler"],
                     show_default=True,
                     help="uniform: one random path per batch; sandwich: largest + smallest + --sandwich-random "
                          "random paths."),
        click.option("--sandwich-random", default=_TRAIN["sandwich_random"], show_default=True, type=int),
        click.option("--distill/--no-distill", default=_TRAIN["distill"], show_default=True,
                     help="In-place distillation (BigNAS): with sandwich, the smaller paths learn the largest "
                          "path's soft predictions."),
    )


def monitor_val():
    return click.option("--monitor-val", default=_TRAIN["monitor_val"], show_default=True, type=int,
                        help="Val images for the per-epoch largest/smallest check (0 = off).")


# ---- measurement (defaults: TimingConfig) ----------------------------------------------------
def timing(fn):
    """--rel-ci --max-s --warmup-s --min-runs --round-runs --batch --out-dir --no-reference."""
    return _chain(
        click.option("--rel-ci", type=float, default=_TIMING["rel_ci"], show_default=True,
                     help="Stop when the 95% CI half-width of the median (of reference ratios) is within this "
                          "fraction."),
        click.option("--max-s", type=float, default=_TIMING["max_s"], show_default=True,
                     help="Time cap per measurement in seconds (the row is flagged unstable when hit)."),
        click.option("--warmup-s", type=float, default=_TIMING["warmup_s"], show_default=True,
                     help="Warm-up time per model (at least 10 runs as well)."),
        click.option("--min-runs", type=int, default=_TIMING["min_runs"], show_default=True,
                     help="Runs before the stop rule applies."),
        click.option("--round-runs", type=int, default=_TIMING["round_runs"], show_default=True,
                     help="Runs per interleaving round (target, then reference)."),
        click.option("--batch", type=int, default=1, show_default=True, help="Batch size of every input."),
        out_dir(TABLES_DIR.as_posix(), help="Tables go to OUT_DIR/<space>/<device-id>.parquet.", name="--out-dir"),
        click.option("--no-reference", is_flag=True,
                     help="Do not interleave with the reference network (raw figures only; not drift compensated)."),
    )(fn)


# ---- parsing of comma-separated values -------------------------------------------------------
def csv(value: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c']; None or '' -> []."""
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


def ints(value: str, name: str) -> tuple[int, ...]:
    """Comma-separated integers, or a ValueError naming the option."""
    try:
        return tuple(int(v) for v in csv(value))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated integers, got {value!r}") from None

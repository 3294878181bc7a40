"""Issue 15: supernet train never overwrites silently; outputs are checked before work; sample
resumes only from the same checkpoint content, seed and settings."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli
from hwnas.search.data import load_dataset
from hwnas.search.spaces import create_space
from hwnas.search.supernet import TrainConfig, load_checkpoint, train_supernet


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("sn")
    sp = create_space("mbv3-fmnist")
    out = []
    for seed in (0, 1):
        p = d / f"sn{seed}.ckpt"
        train_supernet(sp, load_dataset("digits", shape=sp.input_shape),
                       TrainConfig(epochs=1, batch_size=32, train_per_epoch=64, monitor_val=0, threads=1, seed=seed),
                       out=p, progress=False)
        out.append(p)
    return out


def run(*args):
    return CliRunner().invoke(cli, list(map(str, args)))


TRAIN = ("supernet", "train", "--space", "mbv3-fmnist", "--data", "digits", "--epochs", "1", "--train-per-epoch", "32",
         "--batch-size", "32", "--monitor-val", "0", "--threads", "1")


def test_train_refuses_to_overwrite_without_resume_or_force(ckpts, tmp_path):
    p = tmp_path / "sn.ckpt"
    p.write_bytes(ckpts[0].read_bytes())
    before = p.read_bytes()
    r = run(*TRAIN, "--out", p)
    assert r.exit_code == 2 and "--resume" in r.output and "--force" in r.output and "Traceback" not in r.output
    assert p.read_bytes() == before
    r = run(*TRAIN, "--out", p, "--force")
    assert r.exit_code == 0, r.output
    assert load_checkpoint(p)["epoch"] == 1 and len(list(tmp_path.glob("sn.replaced-*.ckpt"))) == 1


def test_unwritable_outputs_fail_before_any_work(ckpts, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = run(*TRAIN, "--out", blocker / "sn.ckpt")
    assert r.exit_code == 2 and "Traceback" not in r.output and str(blocker) in r.output
    r = run("sample", "--space", "mbv3-fmnist", "--supernet", ckpts[0], "--n", "2", "--data", "digits",
            "--out", blocker / "s.parquet")
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and str(blocker) in r.output


SAMPLE = ("sample", "--space", "mbv3-fmnist", "--n", "3", "--data", "digits", "--calib-images", "32",
          "--val-images", "64", "--executor", "serial")


def test_sample_resumes_only_from_the_same_checkpoint_and_seed(ckpts, tmp_path):
    out = tmp_path / "s.parquet"
    r = run(*SAMPLE, "--supernet", ckpts[0], "--out", out)
    assert r.exit_code == 0, r.output
    before = out.read_bytes()
    for change in (("--supernet", ckpts[1]), ("--seed", "3")):
        args = [*SAMPLE, "--supernet", ckpts[0], "--out", out]
        if change[0] == "--supernet":
            args[args.index("--supernet") + 1] = change[1]
        else:
            args += list(change)
        r = run(*args)
        assert r.exit_code == 2 and "cannot resume" in r.output and "--fresh" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
        assert out.read_bytes() == before
    r = run(*SAMPLE, "--supernet", ckpts[1], "--out", out, "--fresh")
    assert r.exit_code == 0, r.output
    assert len(list(tmp_path.glob("s.replaced-*.parquet"))) == 1


def test_sample_rows_without_their_provenance_are_refused_unless_fresh_or_adopt(ckpts, tmp_path):
    """Issue 25: a deleted sidecar no longer means the rows are adopted silently."""
    out = tmp_path / "s.parquet"
    assert run(*SAMPLE, "--supernet", ckpts[0], "--out", out).exit_code == 0
    side = tmp_path / "s.parquet.provenance.json"
    side.unlink()
    before = out.read_bytes()
    r = run(*SAMPLE, "--supernet", ckpts[1], "--out", out)
    lines = r.output.strip().splitlines()
    assert r.exit_code == 2 and len(lines) == 1 and "--fresh" in lines[0] and "--adopt" in lines[0], r.output
    assert out.read_bytes() == before and not side.exists()
    r = run(*SAMPLE, "--supernet", ckpts[0], "--out", out, "--adopt")
    assert r.exit_code == 0 and side.exists(), r.output

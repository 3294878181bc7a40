"""`hwnas profile --device remote:...` through a real agent process: the table has the same
shape, columns and block keys as the local `cpu` table, and a run interrupted by an agent restart
resumes without losing rows."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner
from hwnas.bench.cli import cli

from tests.devices.agent_process import AgentProcess

FAST = ["--space", "mbv3-fmnist", "--max-s", "0.2", "--rel-ci", "0.2"]
pytestmark = pytest.mark.timeout(300)


def run(args, env=None):
    r = CliRunner().invoke(cli, ["profile", *args], env=env, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.output


@pytest.mark.slow  # three profile runs and two agent starts (~90 s loaded); the remote device: test_agent.py
def test_profile_through_the_agent_matches_the_local_cpu_table(tmp_path):
    agent = AgentProcess(tmp_path / "agent", "--max-seconds", "5")
    agent.start()
    out, cache = tmp_path / "tables", tmp_path / "onnx-cache"
    remote = f"remote:{agent.url}"
    env = {"HWNAS_AGENT_TOKEN": agent.token}
    common = [*FAST, "--out-dir", str(out), "--cache-dir", str(cache)]
    try:
        run(["--device", remote, "--limit", "2", *common], env)
        agent.stop(kill=True)  # the board reboots between two runs
        agent.start()
        run(["--device", remote, "--limit", "1", "--resume", *common], env)
    finally:
        agent.stop()
    run(["--device", "cpu", "--limit", "3", *common])

    remote_df = pd.read_parquet(out / "mbv3-fmnist" / f"remote-127.0.0.1-{agent.port}.parquet")
    local_df = pd.read_parquet(out / "mbv3-fmnist" / f"cpu-t{local_threads()}.parquet")
    assert remote_df.shape == local_df.shape == (3, local_df.shape[1])
    assert list(remote_df.columns) == list(local_df.columns)
    assert sorted(remote_df["block_key"]) == sorted(local_df["block_key"])
    assert remote_df["block_key"].is_unique
    assert (remote_df["device"] == remote).all() and remote_df["latency_ms"].gt(0).all()
    assert remote_df["latency_norm_ms"].notna().all()  # reference-normalised through the agent too
    assert (remote_df["param_bytes"].to_numpy() ==
            local_df.set_index("block_key").loc[remote_df["block_key"], "param_bytes"].to_numpy()).all()
    assert agent.blocked_imports() == [] and agent.stray_files() == []


def local_threads() -> int:
    from hwnas.devices.registry import create_device

    return create_device("cpu").threads

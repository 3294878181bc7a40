"""The report of `hwnas validate-lut` (<device-id>-validation.md and .png): the block table's sum
and the calibrated `lut-sum` against whole networks measured end to end, beside the test-retest
noise floor, and measured peak memory against the analytic estimate. It reads what the engine
(bench/engine/validate_lut.py) computed and stored; it measures nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .writer import pyplot, save_figure, table, write_markdown

#: the columns of the metrics table, in order
COLUMNS = ["latency", "predictor", "split", "mape_pct", "within_10pct", "within_5pct", "bias_pct",
           "kendall_tau", "spearman", "n"]


def write_report(base: Path, rep: pd.DataFrame, per_net: pd.DataFrame, info: dict, mem: dict | None,
                 command: str) -> dict[str, Path]:
    """BASE.md and BASE.png from the engine's metrics (`rep`), per-network figures, run facts
    (`info`: the validation table's sidecar) and memory comparison; returns their paths."""
    base = Path(base)
    png = save_figure(_plot(per_net, list(dict.fromkeys(rep.latency)), info), base.with_suffix(".png"),
                      f"{info['space']} @ {info['device_id']} ({info['processor']})")
    md = write_markdown(base.with_suffix(".md"), _markdown(rep, info) + (_memory_markdown(mem) if mem is not None else []),
                        command=command)
    return {"md": md, "png": png}


def _markdown(rep: pd.DataFrame, info: dict) -> list[str]:
    lines = [f"# Table validation: {info['space']} on {info['device']} ({info['device_id']})", "",
             f"Processor: {info['processor']}; threads {info['threads']}; table `{info['table']}`; "
             f"{info['samples']} sampled networks (seed {info['seed']}; train {info['train']}, test {info['test']}), "
             "each measured end to end twice (two passes, minutes apart), interleaved with the reference network.",
             f"Measured {info['written_at']} in {info['wall_s']} s; load average {info['load_avg_start']} at start, "
             f"{info['load_avg_end']} at end (other jobs shared the machine).",
             f"Normalised latency = median per-round ratio to the reference x the table's reference calibration "
             f"({info['ref_latency_ms']:.4f} ms)." if info.get("ref_latency_ms") else "No reference (raw only).",
             "Measured value = mean of the two runs. `within_10pct` = share of networks whose prediction is within"
             " +-10% of it. The test-retest row is the noise floor: run 1 vs run 0 of the same networks.",
             "Calibrated predictor: latency ~ a + b x table_sum + per-stage block counts (least squares on the train split).",
             ""]
    return lines + table(COLUMNS, rep[COLUMNS].itertuples(index=False))


def _memory_markdown(mem: dict) -> list[str]:
    m = mem["metrics"]
    return [
        "", "## Memory: measured vs analytic", "",
        f"Measured `peak_mem_bytes` (source {', '.join(mem['sources'])}: onnxruntime's CPU arena high-water mark over "
        "two runs, read from its profiler: intermediate tensors and outputs as its allocation planner placed them, "
        "plus pre-packed weights; weights read in place and the input are not in it) against the analytic "
        "`activation_bytes` (peak of live tensors in graph order from ONNX shape inference, input included). "
        "Memory does not depend on the machine's load.", "",
        *table(["n", "measured / analytic (median)", "min", "max", "MAPE of analytic %", "within 10%", "Kendall tau",
                "Spearman"],
               [[m["n"], f"{m['ratio_median']:.3f}", f"{m['ratio_min']:.3f}", f"{m['ratio_max']:.3f}",
                 f"{m['mape_pct']:.1f}", f"{m['within_10pct']:.0%}", f"{m['kendall_tau']:.3f}", f"{m['spearman']:.3f}"]]),
        "", f"Networks whose two passes measured different memory: {mem['repeats_disagree']}."]


def _plot(per_net: pd.DataFrame, names: list[str], info: dict):
    plt = pyplot()
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 4.2 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        y = per_net[f"{name}_measured_ms"]
        ax = axes[i, 0]
        for split, mk in (("train", "o"), ("test", "^")):
            m = per_net.split == split
            ax.scatter(y[m], per_net.loc[m, f"{name}_table_sum_ms"], marker=mk, s=18, alpha=0.6, label=f"table sum ({split})")
            ax.scatter(y[m], per_net.loc[m, f"{name}_calibrated_ms"], marker=mk, s=18, alpha=0.8, label=f"calibrated ({split})")
        lo, hi = float(y.min()) * 0.8, float(max(y.max(), per_net[f"{name}_table_sum_ms"].max())) * 1.1
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo * 0.9, hi * 0.9], [lo * 1.1, hi * 1.1], color="gray", alpha=0.15, label="+-10%")
        ax.set(xlabel=f"measured {name} latency (ms)", ylabel="predicted (ms)", title=f"{name}: table vs whole networks")
        ax.legend(fontsize=7)
        ax = axes[i, 1]
        r0, r1 = per_net[f"{name}_run0_ms"], per_net[f"{name}_run1_ms"]
        ax.scatter(r0, r1, s=18)
        lo, hi = float(min(r0.min(), r1.min())) * 0.9, float(max(r0.max(), r1.max())) * 1.1
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.8)
        ax.fill_between([lo, hi], [lo * 0.95, hi * 0.95], [lo * 1.05, hi * 1.05], color="gray", alpha=0.15, label="+-5%")
        ax.set(xlabel="run 0 (ms)", ylabel="run 1 (ms)", title=f"{name}: test-retest (noise floor)")
        ax.legend(fontsize=7)
    return fig

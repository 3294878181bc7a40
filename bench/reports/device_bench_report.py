"""The device-bench report: what the pool table holds so far, and what it does not.

Counts first (trained, second seed, timed, out of the pool), then the noise figures (seed std
against the spread of accuracy, timing test-retest), the CPU hours, and two plots: accuracy vs
measured latency with the Pareto front (archs not timed yet are counted, never placed), and
seed vs seed.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from hwnas.bench.reports.standalone_report import pareto
from hwnas.bench.reports.writer import facts_table, fmt, pyplot, save_figure, table, write_markdown


def write_report(df: pd.DataFrame, facts: dict, meta: dict, paths: dict, command: str,
                 tries: pd.DataFrame | None = None, reproduced: pd.DataFrame | None = None) -> Path:
    plt = pyplot()
    d: Path = paths["dir"]
    dev = meta["device_id"]
    n = facts["archs"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4))
    ax = axes[0]
    both = df.dropna(subset=["val_acc", "latency_ms"])
    if len(both):
        ax.scatter(both["latency_ms"], both["val_acc"], s=10, alpha=0.7, label=f"pool arch ({len(both)} of {n})")
        front = pareto(both)
        ax.step(front["latency_ms"], front["val_acc"], where="post", color="C3", label="Pareto front")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, f"no arch both trained and timed yet\n(trained {facts['trained']} of {n}, "
                f"timed {facts['timed']} of {n})", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("measured end-to-end latency (ms, reference-normalised)")
    ax.set_ylabel(f"val accuracy (%), seed {meta['seeds']['val_acc/test_acc']}")
    ax.set_title(f"{meta['space']} on {dev}: accuracy vs measured latency", fontsize=9)
    ax = axes[1]
    pair = df.dropna(subset=["val_acc", "val_acc_seed2"]) if "val_acc_seed2" in df else df.iloc[:0]
    if len(pair):
        ax.scatter(pair["val_acc"], pair["val_acc_seed2"], s=12)
        lo, hi = pair[["val_acc", "val_acc_seed2"]].min().min(), pair[["val_acc", "val_acc_seed2"]].max().max()
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.set_title(f"seed vs seed: {len(pair)} of {facts['second_seed_planned']} pairs, "
                     f"seed std {facts.get('seed_std_pp', float('nan')):.2f} pp", fontsize=9)
    else:
        ax.text(0.5, 0.5, f"no seed pair trained yet (0 of {facts['second_seed_planned']})", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_title("seed vs seed", fontsize=9)
    ax.set_xlabel("val accuracy, first seed (%)")
    ax.set_ylabel("val accuracy, second seed (%)")
    ax = axes[2]  # the axis the pool was chosen on, labelled as predicted: the rows trained so far
    tr = df.dropna(subset=["val_acc"])
    ax.scatter(tr["latency_pred_ms"], tr["val_acc"], s=10, color="C2", label=f"trained ({len(tr)} of {n})")
    ax.set_xlabel("predicted latency (ms, calibrated block table; NOT measured)")
    ax.set_ylabel("val accuracy (%), first seed")
    ax.set_title("accuracy vs predicted latency (the pool's selection axis)", fontsize=9)
    ax.legend(fontsize=7)
    png = save_figure(fig, d / f"{dev}.png")

    lines = [f"# Device bench: {meta['space']} on `{meta['device']}` ({dev})", "",
             f"Written by `{command}`. Table: `{paths['table'].name}` (Parquet; CSV mirror and `.meta.json` sidecar "
             f"beside it), one row per pool arch; usable as `table:{paths['table'].as_posix()}:val_acc` or "
             f"`...:latency_ms:ms` once complete, and as a search space with `hwnas search --pool`.", ""]
    if not meta["complete"]:
        lines += [f"**Incomplete: {facts['trained']} of {n} archs trained, {facts['second_seed_trained']} of "
                  f"{facts['second_seed_planned']} second seeds, {facts['timed']} of {n} timed. Empty cells "
                  "are not measured yet (never filled in); the figures below are those of the rows that exist. "
                  "Rerunning `make device-bench` resumes every stage.**", ""]
        if facts["timed"] == 0:
            lines += ["The timing stage has not run: it needs a quiet machine (`make device-bench "
                      "DEVICE_BENCH_STAGES=time,report` with nothing else running; validate-lut timed 60 networks "
                      "in 462 s, so about 40 minutes for 300).", ""]
    lines += [f"- Protocol: {meta['protocol_text']} (`{meta['protocol']}`); seeds: {meta['seeds']}.",
              f"- Selection: {(meta.get('selection') or {}).get('method')}; predicted latency from "
              f"`{meta.get('latency_table')}` ({meta.get('latency_pred_source')}).",
              f"- Timing: {meta['timing']['protocol']}.",
              f"- Training environment: {meta.get('train_environment')}.", "",
              *facts_table(facts)]
    lines += ["", "- seed_std_pp: std of one run between seeds, from the paired differences (sqrt(mean d^2 / 2)); "
              "spread_std_pp: std over archs of val_acc (first seed); seed_std_over_spread: their ratio.",
              "- latency_retest_abs_median_pct: median |pass 2 - pass 1| / pass 1 of the end-to-end timing.",
              "- tau_measured_latency_vs_val_acc, tau_macs_vs_val_acc: how well latency alone or MACs alone rank "
              "the trained archs (Kendall tau against val_acc), overall and `_under_q50` among those under the "
              "median measured latency: the bar a supernet's ranking of the pool must clear.",
              "- tau_ceiling_one_seed: the tau a perfect predictor of each arch's mean accuracy over seeds would "
              "expect against one seed's val_acc (2/pi * arcsin(sqrt(r)), r = sin(pi/2 * tau_seed_vs_seed) the "
              "seed-vs-seed correlation, normal scores); no ranking, supernet or oracle, is expected to beat latency alone by more "
              "than this ceiling minus latency's tau.", ""]
    lines += _tries_section(tries, facts) + _reproduce_section(reproduced, facts)
    lines += [f"![plots]({png.name})"]
    return write_markdown(paths["report"], lines)


def _tries_section(tries: pd.DataFrame | None, facts: dict) -> list[str]:
    """Every supernet tried on the pool, beside the bar (latency alone) and the ceiling (seed noise)."""
    if tries is None or tries.empty:
        return []
    nan = float("nan")
    lat = facts.get("tau_measured_latency_vs_val_acc", nan)
    lat_q = facts.get("tau_measured_latency_vs_val_acc_under_q50", nan)
    rows = []
    for t in tries.fillna(nan).itertuples():
        rows.append([f"`{t.checkpoint}`" + (" (latest)" if t.latest else ""), t.epochs, t.images_per_epoch, t.sampler,
                     t.distill, t.train_cpu_s, f"{fmt(t.val_acc_largest, '.1f')} / {fmt(t.val_acc_smallest, '.1f')}",
                     t.estimated, t.tau_overall, _signed(t.tau_overall - lat), t.tau_under_q50,
                     _signed(t.tau_under_q50 - lat_q)])
    return ["## Supernets tried on the pool", "",
            f"Kendall tau of each supernet's estimates against stand-alone val_acc (the archs trained so far); the "
            f"bar is measured latency alone ({fmt(lat)} overall, {fmt(lat_q)} under the median latency), the ceiling "
            f"what seed noise leaves ({fmt(facts.get('tau_ceiling_one_seed', nan))}, "
            f"{fmt(facts.get('tau_ceiling_one_seed_under_q50', nan))}). `vs latency`: the supernet's tau minus "
            "latency's (the goal is +0.1 on both).", "",
            *table(["checkpoint", "epochs", "images / epoch", "sampler", "distill", "train CPU s",
                    "largest / smallest subnet val %", "archs estimated", "tau", "vs latency", "tau under q50",
                    "vs latency"], rows, "lrrllrlrrrrr"), "", _goal_line(tries, facts), ""]


def _goal_line(tries: pd.DataFrame, facts: dict) -> str:
    """Whether any try beats latency alone by 0.1, by how much it falls short, and whether seed
    noise leaves room for +0.1 at all (the ceiling)."""
    def values(col):
        return [str(v) for v in sorted(set(tries[col].dropna()))] or ["-"]

    parts = []
    for where, col, bar, ceiling in (
            ("overall", "tau_overall", "tau_measured_latency_vs_val_acc", "tau_ceiling_one_seed"),
            ("under the median latency", "tau_under_q50", "tau_measured_latency_vs_val_acc_under_q50",
             "tau_ceiling_one_seed_under_q50")):
        best, need, ceil = tries[col].max(), facts.get(bar, float("nan")) + 0.1, facts.get(ceiling, float("nan"))
        if pd.isna(best) or pd.isna(need):
            continue
        verdict = "met" if best >= need else f"short by {need - best:.3f}"
        room = "" if pd.isna(ceil) else (f"; seed noise caps any ranking at {ceil:.3f}, "
                                         + ("above the goal" if need <= ceil else "below the goal: no ranking is expected to meet it"))
        parts.append(f"{where}, the best try reaches {best:.3f} against the goal {need:.3f} ({verdict}{room})")
    tried = (f"Tried: {len(tries)} supernet(s); epochs {', '.join(values('epochs'))}; images per epoch "
             f"{', '.join(values('images_per_epoch'))}; sampler {', '.join(values('sampler'))}.")
    return tried + (" Goal, +0.1 over latency alone: " + "; ".join(parts) + "." if parts else "")


def _reproduce_section(reproduced: pd.DataFrame | None, facts: dict) -> list[str]:
    """The rows retrained by `hwnas train` with arch and seed only: exact, or by how much not
    (the counts are the `reproduced_*` facts)."""
    if reproduced is None or reproduced.empty:
        return ["## Reproduction", "", "Not run yet: `hwnas device-bench --stages reproduce` retrains 5 rows drawn at "
                "random with `hwnas train --arch A --seed S`.", ""]
    n, exact = facts["reproduced_rows"], facts["reproduced_exact"]
    rows = [["`" + r.command.replace("|", "\\|") + "`", *(f"{v:.2f}" for v in (r.val_acc_table, r.val_acc,
             r.test_acc_table, r.test_acc)), "yes" if r.exact else "no"] for r in reproduced.itertuples()]
    return ["## Reproduction", "",
            f"{n} rows drawn at random from the pool's planned runs (the draw and its seed are in the `-reproduce` sidecar) "
            f"and trained again, each by the command shown in a fresh process: {exact} of {n} give the table's val "
            f"and test accuracy exactly; the largest difference is {facts['reproduced_max_abs_val_diff_pp']:.2f} pp "
            f"val, {facts['reproduced_max_abs_test_diff_pp']:.2f} pp test.", "",
            *table(["command", "table val %", "retrained val %", "table test %", "retrained test %", "exact"], rows,
                   "lrrrrl"), ""]


def _signed(x: float) -> str:
    return fmt(x, "+.3f")

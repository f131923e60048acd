"""Time to quality of training runs side by side: the epochs and hours each took to reach levels of validation PCK@0.2.

    python scripts/compare_runs.py checkpoints/lsp-campaign-snapshot checkpoints/lsp-campaign2-snapshot \\
        checkpoints/lsp-fast --name "campaign 1" "campaign 2" lsp-fast --out-plot docs/images/time_to_quality.png

Reads each run's stats.json (the epoch reports) continued from the runs its weights came from (``--load``, where that
run directory is still at hand: engine.rundir.RunDir.history), so epochs and hours count from scratch. Prints a
markdown table: per level, the first epoch report at or above it, with the training hours then (``train/hours``,
wall-clock time of the training processes, pauses left out) and the best report. ``--out-plot`` draws validation PCK@0.2
against epochs and against hours, the levels as lines. A run trained on more than one CPU or precision (config.json's
sessions) is named under the table with the epochs on each, as its hours mix their speeds. An epoch is the run's own
(TRAIN.STEPS_PER_EPOCH; one pass over the training people when 0): compare runs whose epochs see as many images.
"""
import argparse
import os

from cpm.errors import UserError, run_main
from cpm.files import staged
from engine.cli import add_output_argument, add_verbose_argument, apply_verbosity, prepare_outputs
from engine.progress import QUALITY_LEVELS, best_of, first_at
from engine.rundir import RunDir


def histories(paths, names):
    """[(name, that run's validated epoch reports from scratch, oldest first)], in the order given."""
    seen = set()
    for name in names:
        if name in seen:
            raise UserError(f"the run name {name!r} is given twice (--name names each run once)")
        seen.add(name)
    out = []
    for name, path in zip(names, paths, strict=True):
        run = RunDir(path)
        if not run.stats():
            raise UserError(f"{path}: no stats.json with epoch reports (not a run directory?)")
        stats = run.history()[0]
        if not stats:
            raise UserError(f"{path}/stats.json has no validation yet")
        out.append((name, stats))
    return out


def table(named, levels):
    """The markdown table's lines: a row per run; per level 'epoch E, H h' or 'not reached'; the best report."""
    head = ["run", "epochs run"] + [f"{100 * lv:g} %" for lv in levels] + ["best (epoch)"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, stats in named:
        cells = [name, str(stats[-1]["epoch_num"])]
        for level in levels:
            first = first_at(stats, level)
            cells.append("not reached" if first is None else f"epoch {first['epoch_num']}"
                         + (f", {first['train/hours']:.2f} h" if "train/hours" in first else ""))
        best = best_of(stats)
        cells.append(f"{100 * best['val/pck@0.2']:.1f} % ({best['epoch_num']})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def machine_notes(named):
    """A line per run whose epochs were trained on more than one CPU or precision (its hours mix their speeds):
    the epochs on each, in the order trained."""
    lines = []
    for name, stats in named:
        stretches = []  # [trained_on, first epoch, last epoch]
        for s in stats:
            if s.get("trained_on") is None:
                continue
            if stretches and stretches[-1][0] == s["trained_on"]:
                stretches[-1][2] = s["epoch_num"]
            else:
                stretches.append([s["trained_on"], s["epoch_num"], s["epoch_num"]])
        if len({t for t, _, _ in stretches}) > 1:
            parts = [(f"epochs {a}-{b}" if a != b else f"epoch {a}") + f" on {t}" for t, a, b in stretches]
            lines.append(f"{name}: hours from more than one CPU or precision: {'; '.join(parts)}")
    return lines


def plot(named, levels, path):
    """Validation PCK@0.2 against epochs (left) and training hours (right), one line per run (faint where it is the
    history of a run it continues; hollow points in hours where another CPU or precision than the first of its history
    trained the epoch), the levels grey."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, label in ((axes[0], "epoch_num", "epochs (passes over the training people)"),
                           (axes[1], "train/hours", "training hours")):
        for name, stats in named:
            timed = [s for s in stats if key in s]
            inherited = [s for s in timed if s["run"] is not None]  # the runs it continues: faint, under its own
            own = inherited[-1:] + [s for s in timed if s["run"] is None]
            line, = ax.plot([s[key] for s in own], [100 * s["val/pck@0.2"] for s in own], ".-", label=name)
            ax.plot([s[key] for s in inherited], [100 * s["val/pck@0.2"] for s in inherited], "-",
                    color=line.get_color(), alpha=0.3)
            first = next((s["trained_on"] for s in timed if s.get("trained_on")), None)  # its history's first
            other = [s for s in timed if s.get("trained_on") not in (None, first)] if key == "train/hours" else []
            if other:
                ax.plot([s[key] for s in other], [100 * s["val/pck@0.2"] for s in other], "o", color=line.get_color(),
                        markerfacecolor="white", markersize=5, label=f"{name}: another CPU or precision")
        for level in levels:
            ax.axhline(100 * level, color="grey", linewidth=0.8, alpha=0.6)
        ax.set(xlabel=label, ylim=(0, 100))
        ax.grid(alpha=0.3)
    axes[0].set(ylabel="validation PCK@0.2 (%)")
    axes[1].legend(loc="lower right")
    with staged(path) as tmp:  # the temporary name's extension is not the format's
        fig.savefig(tmp, dpi=90, bbox_inches="tight", format=os.path.splitext(path)[1][1:] or "png")
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="run directories (or their snapshots)")
    parser.add_argument("--name", nargs="+", help="a name per run for the table and the plot (default: the folders)")
    default = ",".join(f"{100 * v:g}" for v in QUALITY_LEVELS)
    parser.add_argument("--levels", default=default, help=f"validation PCK@0.2 levels in %% (default {default})")
    add_output_argument(parser, "plot", "write the curves as this image (PNG; .pdf or .svg by the name)")
    add_verbose_argument(parser)
    args = parser.parse_args()
    apply_verbosity(args)
    names = args.name or args.runs
    if len(names) != len(args.runs):
        raise UserError(f"--name gives {len(names)} names for {len(args.runs)} runs")
    try:
        levels = [float(v) / 100 for v in args.levels.split(",")]
    except ValueError:
        levels = []
    if not levels or not all(0 < v <= 1 for v in levels):
        raise UserError(f"--levels {args.levels!r}: expected percentages in (0, 100] separated by commas, "
                        "e.g. 75,80,85")
    prepare_outputs(args)
    named = histories(args.runs, names)
    print("\n".join(table(named, levels) + machine_notes(named)))
    if args.out_plot:
        plot(named, levels, args.out_plot)
        print(f"wrote {args.out_plot}")


if __name__ == "__main__":
    run_main(main)

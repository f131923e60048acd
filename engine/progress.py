"""How soon a run got good: the first epoch report at each level of validation PCK@0.2, from stats.json entries
(engine.rundir.RunDir.stats / history). The model card (scripts/ship.py) and scripts/compare_runs.py say it."""

QUALITY_LEVELS = (0.75, 0.80, 0.85)  # validation PCK@0.2 levels whose training time is reported (issues 24, 36)


def first_at(stats, level):
    """The first entry of ``stats`` (oldest first) whose validation PCK@0.2 is at least ``level`` (a fraction), or
    None."""
    return next((s for s in stats if s.get("val/pck@0.2", -1) >= level), None)


def best_of(stats):
    """The entry with the highest validation PCK@0.2, or None if none was validated."""
    return max((s for s in stats if "val/pck@0.2" in s), key=lambda s: s["val/pck@0.2"], default=None)


def time_to_quality(stats, levels=QUALITY_LEVELS):
    """'80 % at epoch 49 (5.22 h); 85 % not reached (best 81.8 %, epoch 57, 6.00 h)': the first epoch report at or above
    each level of validation PCK@0.2, with the run's training hours then (stats.json's ``train/hours``)."""
    best = best_of(stats)
    parts = []
    for level in levels:
        first = first_at(stats, level)
        if first is not None:
            hours = f" ({first['train/hours']:.2f} h)" if "train/hours" in first else ""
            parts.append(f"{100 * level:.0f} % at epoch {first['epoch_num']}{hours}")
        elif best is not None:
            hours = f", {best['train/hours']:.2f} h" if "train/hours" in best else ""
            parts.append(f"{100 * level:.0f} % not reached (best {100 * best['val/pck@0.2']:.1f} %, epoch "
                         f"{best['epoch_num']}{hours})")
        else:
            parts.append(f"{100 * level:.0f} % not reached (no validation)")
    return "; ".join(parts)

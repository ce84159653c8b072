"""Layout fixes applied to every figure as it is saved (:func:`dualbench.plots.save_figure`)."""

from __future__ import annotations

import numpy as np


def stagger_crowded_xtick_labels(fig, gap_pt: float = 2.0) -> None:
    """Move each x tick label that would overlap, or come within ``gap_pt`` points of, the
    label to its left one line lower (N = 35 and 50 lie 0.15 decades apart on a log axis:
    their labels ran together).  A label that would clash on both lines stays put, and so
    do rotated labels (the leaderboard's material names), which overlap by design."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    gap = gap_pt * fig.dpi / 72.0
    for ax in fig.axes:
        if not ax.xaxis.get_visible():
            continue
        lo, hi = sorted(ax.get_xlim())
        shown = [t for t in ax.xaxis.get_major_ticks()
                 if lo <= t.get_loc() <= hi and t.label1.get_visible() and t.label1.get_text()
                 and t.label1.get_rotation() == 0]
        right = [-np.inf, -np.inf]  # right edge of the last label on the first, second line
        for tick in sorted(shown, key=lambda t: t.get_loc()):
            box = tick.label1.get_window_extent(renderer)
            if box.x0 >= right[0] + gap:
                right[0] = box.x1
                if "\n" in tick.label1.get_text():
                    right[1] = max(right[1], box.x1)
            elif box.x0 >= right[1] + gap:
                tick.set_pad(tick.get_pad() + 1.2 * tick.label1.get_fontsize())
                right[1] = box.x1

"""DFT frames: reading every format into one internal form (:mod:`.readers`), choosing and
grouping them by condition (:mod:`.selection`), and the training pool, held-out test set
and nested N-frame subsets of the sweep (:mod:`.pool`).

The names most callers need are importable from here.
"""

from dualbench.data.pool import (
    prepare_frames,
    select_frames,
    selection_of,
    split_test,
    stratified_order,
    subset_indices,
)
from dualbench.data.readers import (
    FRAME_FORMATS,
    MAX_FORCE_EV_PER_A,
    STRESS_KEYS,
    FrameError,
    ase_stress_to_gpa_matrix,
    guess_format,
    has_stress,
    load_frames,
    read_frames,
    validate_frame,
    vasp_kbar_to_ase_stress,
    write_frames,
)

__all__ = [
    "FRAME_FORMATS",
    "MAX_FORCE_EV_PER_A",
    "STRESS_KEYS",
    "FrameError",
    "ase_stress_to_gpa_matrix",
    "guess_format",
    "has_stress",
    "load_frames",
    "prepare_frames",
    "read_frames",
    "select_frames",
    "selection_of",
    "split_test",
    "stratified_order",
    "subset_indices",
    "validate_frame",
    "vasp_kbar_to_ase_stress",
    "write_frames",
]

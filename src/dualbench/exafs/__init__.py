"""Configuration-averaged EXAFS from MD snapshots, with larch's bundled FEFF8L.

The scattering potentials (FEFF8L modules ``pot`` and ``xsph``: ``phase.pad`` and
``xsect.json``) are computed once per (material, absorber) from a reference structure
(the ideal crystal or the MD-average structure).  Two engines then give chi(k) of every
(snapshot, absorber) pair, with S0^2 = 1 and no Debye-Waller factor (the disorder comes
from the configurations; S0^2 is applied only in :mod:`dualbench.compare`):

* ``feff`` (:mod:`.engine_feff`): FEFF8L ``rdinp``, ``pathfinder``, ``genfmt`` and
  ``ff2x`` on each pair's own cluster with the fixed potentials; the reference.
* ``fast`` (:mod:`.paths`, :mod:`.path_model`, :mod:`.path_table`, :mod:`.engine_fast`):
  FEFF8L's own path list, amplitudes, phases and mean free paths of the ideal crystal,
  with genfmt's response of each path to its geometry, computed once per material
  (:func:`paths_stage`); every instance of every path is then mapped to its atoms in
  each snapshot and carried to the snapshot's geometry, vectorised over instances.

The package's modules each do one job, and the data flow one way: :mod:`.settings` ->
:mod:`.ft`, :mod:`.clusters` -> :mod:`.feff` (and :mod:`.onepath`) -> :mod:`.paths`,
:mod:`.path_model` -> :mod:`.path_table` -> :mod:`.chunks` -> :mod:`.engine_feff`,
:mod:`.engine_fast` -> :mod:`.averaging` -> :mod:`.stages`.

Units: distances in Å, k in 1/Å, energies in eV.
"""

from dualbench.exafs.averaging import (
    AveragedChi,
    average_chunks,
    average_spectra,
    convergence_record,
    write_average,
)
from dualbench.exafs.chunks import ChunkResult, read_chunk, write_chunk
from dualbench.exafs.clusters import Cluster, average_structure, cut_cluster, potential_indices
from dualbench.exafs.engine_fast import compute_chunk_fast
from dualbench.exafs.engine_feff import compute_chunk
from dualbench.exafs.feff import (
    FEFF_LOG,
    FEFF_MODULES,
    FIXED_POTENTIAL_MODULES,
    POTENTIAL_FILES,
    POTENTIALS_META,
    FeffError,
    Potentials,
    chi_fixed_potentials,
    chi_full_feff,
    compute_potentials,
    feff_executable,
    feff_input,
    load_potentials,
    read_feff_chi,
    run_feff_modules,
)
from dualbench.exafs.ft import fourier_transform, read_chi_k, write_chi_k, write_chi_r
from dualbench.exafs.path_table import (
    PathTable,
    build_path_table,
    read_path_table,
    write_path_table,
)
from dualbench.exafs.sampling import (
    chunk_count,
    chunk_of,
    planned_snapshots,
    select_absorbers,
    select_snapshots,
)
from dualbench.exafs.settings import (
    K_GRID,
    K_MAX,
    K_STEP,
    R_OUT_MAX,
    FeffSettings,
    FTSettings,
    import_larch,
    section_defaults,
)
from dualbench.exafs.stages import (
    ENGINES,
    average_snapshots,
    average_stage,
    chunk_stage,
    ideal_supercell,
    paths_stage,
    potentials_stage,
)

__all__ = [
    "K_GRID", "K_MAX", "K_STEP", "R_OUT_MAX", "FEFF_LOG", "FEFF_MODULES",
    "FIXED_POTENTIAL_MODULES", "POTENTIAL_FILES", "POTENTIALS_META",
    "AveragedChi", "ChunkResult", "Cluster", "FeffError", "FeffSettings", "FTSettings",
    "Potentials", "average_chunks", "average_snapshots", "average_spectra", "average_stage",
    "average_structure", "chi_fixed_potentials", "chi_full_feff", "chunk_count", "chunk_of",
    "chunk_stage", "compute_chunk", "compute_potentials", "convergence_record",
    "cut_cluster", "feff_executable", "feff_input", "fourier_transform", "import_larch",
    "load_potentials", "planned_snapshots", "potential_indices", "potentials_stage",
    "read_chi_k", "read_chunk", "read_feff_chi", "run_feff_modules", "section_defaults",
    "select_absorbers", "select_snapshots", "write_average", "write_chi_k", "write_chi_r",
    "write_chunk", "ENGINES", "PathTable", "build_path_table", "compute_chunk_fast",
    "ideal_supercell", "paths_stage", "read_path_table", "write_path_table",
]

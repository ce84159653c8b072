"""Configuration-averaged EXAFS from MD snapshots, with larch's bundled FEFF8L.

The scattering potentials (FEFF8L modules ``pot`` and ``xsph``: ``phase.pad`` and
``xsect.json``) are computed once per (material, absorber) from a reference structure
(the ideal crystal or the MD-average structure).  Two engines then give chi(k) of every
(snapshot, absorber) pair, with S0^2 = 1 and no Debye-Waller factor (the disorder comes
from the configurations; S0^2 is applied only in :mod:`dualbench.scoring.against_experiment`):

* ``feff`` (:mod:`.engine_feff`, :func:`chunk_feff`): FEFF8L ``rdinp``, ``pathfinder``,
  ``genfmt`` and ``ff2x`` on each pair's own cluster with the fixed potentials; the
  reference.
* ``fast`` (:mod:`.engine_fast`, :func:`chunk_fast`): FEFF8L's own path list,
  amplitudes, phases and mean free paths of the ideal crystal, with genfmt's response of
  each path to its geometry, computed once per material into a path table
  (:func:`paths_stage`); every instance of every path is then mapped to its atoms in
  each snapshot and carried to the snapshot's geometry, vectorised over instances.

The modules, in the order the data flow through them:

* :mod:`.settings`: the k grid, :class:`FeffSettings`, :class:`FTSettings` and the arm's
  :class:`ExafsSettings` (FEFF settings, engine, :class:`SnapshotSampling`, potentials),
  built once from the config's ``exafs`` section.
* :mod:`.ft` (the Fourier transform, chi files), :mod:`.clusters` (clusters, mean
  structure), :mod:`.shells` (the ideal crystal's shells; RPATH and the cluster radius
  kept between them), :mod:`.sampling` (which snapshots, absorbers, chunks).
* :mod:`.feff`: FEFF8L runs (potentials, full and fixed-potential chi).
* The ``fast`` engine's path table: :mod:`.single_path` (genfmt of single paths, in a
  child process), :mod:`.feff_path_list` (FEFF's path list of the ideal crystal and the
  instances of its paths around each absorber), :mod:`.path_geometry_response` (how a
  path's chi(k) follows its geometry), :mod:`.path_table` (builds, writes, reads and
  checks the table).
* :mod:`.engine_feff`, :mod:`.engine_fast`: chi(k) of a chunk of snapshots
  (:mod:`.chunks`: a chunk's result on disk).
* :mod:`.averaging`: the configuration average and its convergence.
* :mod:`.pipeline`: the steps, each on one :class:`ExafsSettings`; :mod:`.stages`: the
  Snakemake jobs and the one-process ``exafs-average`` (:func:`average_snapshots`),
  each a sequence of those steps.

Units: distances in Å, k in 1/Å, energies in eV.
"""

from dualbench.exafs.averaging import (
    AveragedChi,
    average_chunks,
    average_results,
    average_spectra,
    convergence_record,
    write_average,
)
from dualbench.exafs.chunks import ChunkResult, read_chunk, write_chunk
from dualbench.exafs.clusters import Cluster, average_structure, cut_cluster, potential_indices
from dualbench.exafs.engine_fast import chunk_fast
from dualbench.exafs.engine_feff import chunk_feff
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
from dualbench.exafs.pipeline import compute_chunk, ideal_supercell
from dualbench.exafs.sampling import (
    chunk_count,
    chunk_of,
    planned_snapshots,
    select_absorbers,
    select_snapshots,
)
from dualbench.exafs.settings import (
    ENGINES,
    K_GRID,
    K_MAX,
    K_STEP,
    R_OUT_MAX,
    ExafsSettings,
    FeffSettings,
    FTSettings,
    SnapshotSampling,
    import_larch,
)
from dualbench.exafs.shells import (
    Shell,
    SiteShells,
    check_cut_between_shells,
    shells_around,
)
from dualbench.exafs.stages import (
    average_snapshots,
    average_stage,
    chunk_stage,
    paths_stage,
    potentials_stage,
)

__all__ = [
    "K_GRID", "K_MAX", "K_STEP", "R_OUT_MAX", "FEFF_LOG", "FEFF_MODULES",
    "FIXED_POTENTIAL_MODULES", "POTENTIAL_FILES", "POTENTIALS_META",
    "AveragedChi", "ChunkResult", "Cluster", "ExafsSettings", "FeffError", "FeffSettings",
    "FTSettings", "Potentials", "SnapshotSampling", "average_chunks", "average_results",
    "average_snapshots", "average_spectra", "average_stage",
    "average_structure", "chi_fixed_potentials", "chi_full_feff", "chunk_count", "chunk_of",
    "chunk_stage", "chunk_fast", "chunk_feff", "compute_chunk", "compute_potentials",
    "convergence_record", "cut_cluster", "feff_executable", "feff_input", "fourier_transform",
    "import_larch", "load_potentials", "planned_snapshots", "potential_indices",
    "potentials_stage", "read_chi_k", "read_chunk", "read_feff_chi", "run_feff_modules",
    "select_absorbers", "select_snapshots", "write_average",
    "write_chi_k", "write_chi_r", "write_chunk", "ENGINES", "PathTable", "build_path_table",
    "ideal_supercell", "paths_stage", "read_path_table", "write_path_table",
    "Shell", "SiteShells", "check_cut_between_shells", "shells_around",
]

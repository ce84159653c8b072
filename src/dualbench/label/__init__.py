"""DFT labels for a material without DFT data: sample configurations, then label them.

Sampling (:func:`sample_configs`): snapshots of NVT MD with the *vanilla* model at the
material's temperature, which are the configurations the fine-tuned model must get
right, plus rattled and strained copies of the ideal cell, which reach displacements and
cell shapes the MD does not.  The MD's last ``test_frames`` snapshots (a later,
contiguous stretch of the trajectory) become the held-out test set; the earlier
snapshots and the rattled cells are the training pool.

Labelling (:func:`label_configs`): energy (eV), forces (eV/Å) and stress (ASE's
convention, eV/Å^3) of each configuration from a DFT calculator built by
:func:`make_dft_calculator`:

- ``gpaw`` (embedded, runs anywhere the package is installed): plane waves with the
  finite-basis (Pulay) stress correction, PBE, the default PAW setups of ``gpaw-data``
  (14 valence electrons for W and Mo: the 6-electron W setup is off by more than
  0.13 eV/Å), Fermi-Dirac smearing, Monkhorst-Pack k-points including Gamma; the D3
  dispersion (``dftd3`` package, Becke-Johnson or zero damping) added through ASE's
  ``SumCalculator``.  Layered materials need the dispersion: without
  it PBE barely binds the van der Waals gap.
- ``vasp`` or ``espresso`` through ASE on a cluster, with their own D3 (VASP ``IVDW``
  11/12, Quantum ESPRESSO ``vdw_corr = dft-d3``).  ``calculator_options`` passes what
  they need (POTCAR set, pseudopotentials, command) and overrides any keyword.

The labelled frames are extended XYZ that :mod:`dualbench.data` reads like any DFT set;
each frame's ``info`` keeps its origin (``md`` step or ``rattle``), its split and the
level of theory (``dft``).
"""

from __future__ import annotations

from dualbench.label.calculators import make_dft_calculator
from dualbench.label.labelling import chunk_configs, gather_labels, label_configs, run_label_chunk
from dualbench.label.sampling import rattled_cells, sample_configs
from dualbench.label.settings import CALCULATORS, DISPERSIONS, LabelSettings, SamplingRound
from dualbench.label.store import collect_labelled, config_key, find_labelled, load_reuse

__all__ = [
    "CALCULATORS", "DISPERSIONS", "LabelSettings", "SamplingRound", "chunk_configs",
    "collect_labelled", "config_key", "find_labelled", "gather_labels", "label_configs",
    "load_reuse", "make_dft_calculator", "rattled_cells", "run_label_chunk", "sample_configs",
]

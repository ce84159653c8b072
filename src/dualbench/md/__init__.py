"""NVT or NPT molecular dynamics with any model of the sweep, classical or path-integral
(i-PI): snapshots, restart, guards.

Import each name from the module it lives in (this package re-exports nothing):

* :mod:`.settings`: the ``md`` section's settings -- :class:`MDSettings`,
  :func:`md_settings`, :func:`md_defaults` (the schema's), :data:`LOG_COLUMNS`,
  :data:`NON_TRAJECTORY_SETTINGS`, :func:`trajectory_params`.
* :mod:`.guards`: the checks of every step -- :func:`check_state` (of a classical
  state: :func:`check_configuration` and :func:`check_temperature`, which the
  path-integral run uses on its own), :class:`MDGuardError`.
* :mod:`.ensembles`: the classical integrators (NVT Langevin or Bussi, NPT
  Langevin-Hoover) -- :func:`start_classical_dynamics`, :func:`make_dynamics`,
  :func:`dynamics_state`, :func:`pressure_GPa`, :func:`validate_ensemble`.
* :mod:`.checkpoint`: the restart checkpoint and what a run accumulates --
  :data:`CHECKPOINT_FILE`, :class:`RunState`, :func:`inputs_fingerprint`,
  :func:`save_checkpoint`, :func:`load_checkpoint`.
* :mod:`.snapshots`: snapshot I/O -- :data:`SNAPSHOTS_FILE`, :data:`SUPERCELL_FILE`,
  :func:`snapshot_frames`, :func:`write_snapshots`, :func:`read_snapshots`.
* :mod:`.calculator`: the model of a run -- :func:`make_quiet_calculator` (its
  fingerprint is the spec's, ``ModelSpec.fingerprint``).
* :mod:`.runfiles`: what a run reports and its files -- :class:`MDResult`,
  :data:`LOG_FILE`, :data:`RUN_INFO_FILE`, :data:`FAILURE_FILE`, :func:`phase_of`.
* :mod:`.driver`: the classical run -- :func:`run_md`, :func:`run_md_job` (which runs
  ``nuclei: pimd`` with :mod:`.pimd`).
* :mod:`.pimd`: path-integral MD with i-PI as the engine and the model as its socket
  client -- :func:`run_pimd`, the bead rule :func:`bead_count`, :func:`beads_of`,
  :data:`CENTROIDS_FILE`; i-PI's files in :mod:`.ipi_io`; the bead-convergence record
  in :mod:`.bead_convergence`.
* :mod:`.harmonic`: the exact oracle -- :class:`EinsteinCalculator`,
  :func:`einstein_u2_A2`, :func:`stiffness_for`.

The imports go one way: :mod:`.ensembles` -> :mod:`.settings` -> :mod:`.guards`,
:mod:`.checkpoint` -> :mod:`.pimd` (with :mod:`.ipi_io`) -> :mod:`.driver`, which also
uses :mod:`.snapshots`, :mod:`.runfiles` and :mod:`.calculator`.
"""

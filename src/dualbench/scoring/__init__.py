"""Scoring: the measured spectrum, the experiment's own fit, and the scores of the
simulations against the experiment or against a reference model's simulation.

Nothing is re-exported here; import from the module that holds it:

* :mod:`~dualbench.scoring.measured`: the measured spectrum read with larch and reduced
  to chi(k) and chi(R) (``experiment`` job and command);
* :mod:`~dualbench.scoring.measured_checks`: checks of a measured spectrum's rows
  (numeric data block, finite values, one energy sweep);
* :mod:`~dualbench.scoring.experiment_fit`: the experiment's own larch feffit, the
  yardstick (E0 shift, S0^2) every model is scored with (fit.json);
* :mod:`~dualbench.scoring.fit_record`: fit.json read and validated for a comparison;
* :mod:`~dualbench.scoring.yardstick`: the fit's E0 and S0^2 errors propagated to a score;
* :mod:`~dualbench.scoring.spectrum_scores`: a simulated chi(k) placed on the measured
  one (E0 shift, S0^2) and its scores (mse_k, mse_r, R-factor);
* :mod:`~dualbench.scoring.sampling_uncertainty`: a score's MD sampling noise
  (autocorrelation, noise floor, circular block bootstrap intervals);
* :mod:`~dualbench.scoring.against_experiment`: every simulation against the measured
  spectrum (``compare`` command, ``compare_exafs`` job, comparison.csv);
* :mod:`~dualbench.scoring.against_reference_model`: every run against a reference
  model's simulation, for a material without an experiment (``compare_reference`` job);
* :mod:`~dualbench.scoring.convergence`: the paired-seed equivalence decision
  (convergence.json).

The time-series statistics these use stay in :mod:`dualbench.stats`, a low-level utility
shared with the MD diagnostics, the EXAFS averaging and the plots.
"""

# Input and param functions of summary.smk, plots.smk and leaderboard.smk.

from dualbench.plots import run_label
from dualbench.scoring.against_reference_model import resolve_reference


def get_summary_inputs(wildcards):
    """Every run's DFT metrics and, with an experiment, the EXAFS comparison."""
    inputs = {
        "dft": get_run_files(
            f"{RUN_DIR}/dft_metrics.json",
            wildcards.material,
        )
    }
    if has_experiment(wildcards.material):
        inputs["exafs"] = (
            f"{MATERIAL_DIR.format(material=wildcards.material)}/exafs/comparison.csv"
        )
    elif has_reference(wildcards.material):
        inputs["reference"] = (
            f"{MATERIAL_DIR.format(material=wildcards.material)}/exafs/reference_comparison.csv"
        )
    return inputs


def has_reference(material):
    """Whether a material is scored against a reference model (no experiment, and
    exafs.reference_model set)."""
    return (
        not has_experiment(material) and config["exafs"]["reference_model"] is not None
    )


def get_reference_run(material):
    """[model, N] of a material's reference run (exafs.reference_model resolved)."""
    model, n = resolve_reference(config["exafs"]["reference_model"], MODELS, EXAFS_N)
    return [model, n]


def get_plot_seed():
    """The seed whose runs the per-run figures (Fig. 2, force parity) show."""
    return (
        EXAFS_SEEDS[0] if config["plots"]["seed"] is None else config["plots"]["seed"]
    )


def get_fig2_runs():
    """(model, n) pairs of Fig. 2: vanilla and the configured (default: the EXAFS arm's
    largest) N."""
    tuned = config["plots"]["fig2_n_frames"] or [n for n in EXAFS_N[-1:] if n > 0]
    ns = ([0] if 0 in EXAFS_N else []) + sorted(tuned)
    return [(model, n) for model in MODELS for n in ns if n == 0 or is_trainable(model)]


def get_run_path(pattern, material, model, n):
    """`pattern` (with {material}, {model}, {n}, {seed}) for a run of the plotted seed."""
    return pattern.format(material=material, model=model, n=n, seed=get_plot_seed())


def get_fig2_inputs(wildcards):
    """The simulated chi(k) of the Fig. 2 runs and, with an experiment, the measured chi(k)
    and the comparison."""
    material = wildcards.material
    inputs = {
        "sims": [
            get_run_path(
                f"{RUN_DIR}/exafs/chi_k.csv",
                material,
                model,
                n,
            )
            for model, n in get_fig2_runs()
        ]
    }
    if has_experiment(material):
        inputs["experiment"] = f"{EXPERIMENT_DIR.format(material=material)}/chi_k.csv"
        inputs["comparison"] = (
            f"{MATERIAL_DIR.format(material=material)}/exafs/comparison.csv"
        )
    return inputs


def get_parity_inputs(wildcards):
    """The force parity tables of the Fig. 2 runs."""
    return [
        get_run_path(
            f"{RUN_DIR}/force_parity.csv",
            wildcards.material,
            model,
            n,
        )
        for model, n in get_fig2_runs()
    ]


def get_sigma2_inputs(wildcards):
    """Every run's MD sigma^2, its EXAFS average (whose failure record says that a run
    left the crystal, found only there: plots.runs_table reads it) and, with an
    experiment, the shell fit."""
    material = wildcards.material
    inputs = {
        "sigma2": get_run_files(
            f"{RUN_DIR}/md/sigma2.csv",
            material,
            "exafs",
        ),
        "status": get_run_files(
            f"{RUN_DIR}/exafs/chi_snapshots.npz",
            material,
            "exafs",
        ),
    }
    if has_experiment(material):
        inputs["fit"] = f"{EXPERIMENT_DIR.format(material=material)}/fit.json"
    return inputs


def get_production_ps(wildcards):
    """Production time of a material's MD runs in ps (convergence.json sizes the MD from
    it)."""
    md = get_md(wildcards.material)
    return md["production_steps"] * md["timestep_fs"] / 1000


def get_convergence_inputs(wildcards):
    """The summary and, with an experiment, its fit (the yardstick's E0 and S0^2 errors)."""
    material = wildcards.material
    inputs = {"summary": f"{MATERIAL_DIR.format(material=material)}/summary.csv"}
    if has_experiment(material):
        inputs["fit"] = f"{EXPERIMENT_DIR.format(material=material)}/fit.json"
    return inputs


def get_fig2_title(wildcards):
    """The title of Fig. 2: material, absorber, edge and temperature."""
    entry = config["materials"][wildcards.material]
    return (
        f"{wildcards.material}: {entry['absorber']} "
        f"{entry['edge']} edge, "
        f"{entry['temperature_K']:g} K"
    )


def get_leaderboard_inputs(wildcards):
    """Every material's summary and, with an experiment, its fit and the first-shell sigma^2
    of every EXAFS-arm run."""
    inputs = {"summaries": [], "fits": [], "sigma2": []}
    for material in MATERIALS:
        inputs["summaries"].append(
            f"{MATERIAL_DIR.format(material=material)}/summary.csv"
        )
        if has_experiment(material):
            inputs["fits"].append(
                f"{EXPERIMENT_DIR.format(material=material)}/fit.json"
            )
            inputs["sigma2"] += get_run_files(
                f"{RUN_DIR}/md/sigma2.csv", material, "exafs"
            )
    return inputs


def get_temperatures():
    """Each material's temperature (K): the DFT condition the leaderboard's force columns
    prefer."""
    return {
        material: config["materials"][material]["temperature_K"]
        for material in MATERIALS
    }


def get_experiment_conditions():
    """Each material's dft.experiment_condition: the test condition the leaderboard's force
    columns take (None: the temperature's, else all frames)."""
    return {
        material: config["materials"][material]["dft"].get("experiment_condition")
        for material in MATERIALS
    }

# Shared helpers: the study config (prepared by the package), the paths of the study
# (defined once, below), wildcard constraints, the get_* input and param functions of every
# rules file, and get_final_output(), the targets of the `all` rule.  The rules files hold
# rules only.

from dualbench.schema import canonical, exafs_n_frames, exafs_seeds, material_section
from dualbench.exafs import chunk_count
from dualbench.training import model_section, scheduled
from dualbench.label import LabelSettings
from dualbench.models.backend import conda_env, get_backend, kinds
from dualbench.md.settings import trajectory_params
from dualbench.plots import run_label
from dualbench.scoring.against_reference_model import resolve_reference
from dualbench.workflow import data_file, local_structure_file, study_config

# The config all rules read: re-read for duplicate keys, validated against the package's
# schema, defaults filled, keys in sorted order (dualbench.workflow.study_config).  A
# --configfile replaces config/config.yaml instead of being merged into it.
CONFIG_FILES = list(workflow.overwrite_configfiles or workflow.configfiles)
_prepared = study_config(
    config,
    CONFIG_FILES,
    (
        workflow.config_settings.overwrite_config
        if workflow.overwrite_configfiles
        else None
    ),
)
config.clear()
config.update(_prepared)

MATERIALS = list(config["materials"])
MODELS = list(config["models"])
N_FRAMES = sorted(config["sweep"]["n_frames"])
# The N whose models also run MD and the EXAFS arm (sweep.exafs_n_frames; default all).
EXAFS_N = exafs_n_frames(config)
SEEDS = config["sweep"]["seeds"]
# The seeds whose models also run the EXAFS arm (sweep.exafs_seeds; default all).
EXAFS_SEEDS = exafs_seeds(config)
DATA_ROLES = ("dft_train", "dft_test", "experiment", "structure")

# Every path of the study, defined once; rules and input functions build theirs from these
# ({material}, {model}, {n}, {seed} are wildcards; str.format or expand fill them).
MATERIAL_DIR = "results/{material}"
# One folder per (material, model, N, seed): model, DFT metrics, MD and EXAFS.
RUN_DIR = f"{MATERIAL_DIR}/{{model}}/n{{n}}/seed{{seed}}"
# A run's name under logs/<rule>/ and benchmarks/<rule>/.
RUN_ID = "{model}/n{n}/seed{seed}"
# The fixed scattering potentials, the path table and the experiment of a material.
POTENTIALS_DIR = f"{MATERIAL_DIR}/exafs/potentials"
PATH_TABLE = f"{MATERIAL_DIR}/exafs/paths/paths.npz"
EXPERIMENT_DIR = f"{MATERIAL_DIR}/experiment"
# The leaderboard of every material of the study: table, heat maps and the static page.
LEADERBOARD_DIR = "results/leaderboard"
LEADERBOARD_CSV = f"{LEADERBOARD_DIR}/leaderboard.csv"
LEADERBOARD_FIGURE = f"{LEADERBOARD_DIR}/leaderboard_heatmap"
LEADERBOARD_PAGE = f"{LEADERBOARD_DIR}/index.html"


wildcard_constraints:
    material="|".join(MATERIALS),
    model="|".join(MODELS),
    n=r"\d+",
    seed=r"\d+",
    role="|".join(DATA_ROLES),


def get_material_sources(material):
    """The data sources of a material by role (absent or null roles left out)."""
    entry = config["materials"][material]
    sources = {
        "dft_train": entry["dft"]["train"],
        "dft_test": entry["dft"]["test"],
        "experiment": entry["experiment"],
        "structure": entry["structure"].get("source"),
    }
    # `select` picks frames of a file, not the file: it is prepare_frames' param, not fetch's
    return {
        role: {k: v for k, v in src.items() if k != "select"}
        for role, src in sources.items()
        if src is not None
    }


def get_source(material, role):
    """The source mapping behind resources/{material}/{role}/."""
    return get_material_sources(material)[role]


def canonical_params(value):
    """A param with every mapping in sorted key order (see `canonical` above): wrap each
    dict-valued param in it, so that key order never triggers Snakemake's params rerun.
    """
    return canonical(value)


def get_data_file(material, role):
    """Where a source's file lies: in resources/ after fetch_data checked it (downloads, and
    local files with a sha256, such as the committed DFT frames), or the local path as given.
    """
    return data_file(material, role, get_source(material, role))


def get_local_source(wildcards):
    """The local file behind a checked copy in resources/ (so an edit reruns the copy)."""
    source = get_source(wildcards.material, wildcards.role)
    return [source["path"]] if "path" in source else []


def get_structure_input(wildcards):
    """The fetched structure file when the material's structure comes from a file."""
    if "source" in config["materials"][wildcards.material]["structure"]:
        return [get_data_file(wildcards.material, "structure")]
    return []


def get_dft_frames(material, split):
    """The DFT frames file of a material's `train` or `test` split: the configured file, the
    labelled frames when the config has `dft.label`, or [] (no test file: held out)."""
    if config["materials"][material]["dft"]["label"] is not None:
        return f"{MATERIAL_DIR.format(material=material)}/dft/labelled/{split}.extxyz"
    role = f"dft_{split}"
    return (
        get_data_file(material, role) if role in get_material_sources(material) else []
    )


def get_label_settings(material):
    """The `dft.label` settings of a material (schema defaults filled)."""
    return LabelSettings.from_config(config["materials"][material]["dft"]["label"])


def get_sampling_model_name(material):
    """The model (a key of `models`) whose vanilla MD is sampled for labelling."""
    return (
        config["materials"][material]["dft"]["label"]["sampling"]["model"] or MODELS[0]
    )


def get_sampling_model(material):
    """The spec params of the pretrained model whose MD is sampled."""
    return get_model_params(get_sampling_model_name(material))


def get_model_params(name):
    """A model's config entry as params, its unset keys (null, {}) left out: adding a
    schema key does not rerun the models that leave it unset."""
    entry = config["models"][name]
    return canonical_params(
        {
            k: v
            for k, v in entry.items()
            if v is not None and v != {} and k != "finetune"
        }
    )


# The conda env of each model kind's rules (relative to workflow/rules/). A `kind: ase`
# calculator's own package must be added to envs/ml.yaml for `--sdm conda`.
MODEL_ENVS = {kind: f"../../{conda_env(kind)}" for kind in kinds()}


def get_model_env(wildcards):
    """The conda env of the rule's model (by its kind)."""
    return MODEL_ENVS[config["models"][wildcards.model]["kind"]]


def get_sampling_env(wildcards):
    """The conda env of a material's sampling model."""
    return MODEL_ENVS[
        config["models"][get_sampling_model_name(wildcards.material)]["kind"]
    ]


def get_finetune_params(model, n):
    """The finetune settings of a model at N = n (its own `finetune` keys over the
    study's, schedule applied; device left to the config, so that moving to a GPU does not
    rerun fine-tuning)."""
    own = config["models"][model].get("finetune")
    settings = scheduled(model_section(config["finetune"], own), n)
    return canonical_params({k: v for k, v in settings.items() if k != "device"})


def is_trainable(model):
    """Whether a model's kind has a fine-tuning trainer here (kind ase has none)."""
    return get_backend(config["models"][model]["kind"]).trainable


def get_label_chunks(wildcards):
    """The labelled chunk files of a material with `dft.label`: per sampling round, one
    per labelling job."""
    settings = get_label_settings(wildcards.material)
    return [
        f"{MATERIAL_DIR.format(material=wildcards.material)}/dft/label/round{r}/chunk{i}.extxyz"
        for r in range(len(settings.sampling_rounds()))
        for i in range(settings.n_chunks(r))
    ]


def get_round_sampling(wildcards):
    """What round `wildcards.round` samples: the shared sampling settings, the labelled
    cell and that round's counts (so that adding a round does not rerun earlier ones).
    """
    label = config["materials"][wildcards.material]["dft"]["label"]
    sampling = {k: v for k, v in label["sampling"].items() if k != "rounds"}
    rounds = get_label_settings(wildcards.material).sampling_rounds()
    r = int(wildcards.round)
    if r >= len(rounds):
        raise ValueError(f"material {wildcards.material} has no sampling round {r}")
    sampling.update(vars(rounds[r]))
    return canonical_params({"supercell": label["supercell"], "sampling": sampling})


def get_label_theory(wildcards):
    """The labelling settings but the sampling (the level of theory, chunking and reuse)."""
    label = config["materials"][wildcards.material]["dft"]["label"]
    return canonical_params({k: v for k, v in label.items() if k != "sampling"})


def get_label_reuse(wildcards):
    """The labelled files a material's labelling reuses frames from."""
    return list(get_label_settings(wildcards.material).reuse)


def get_local_structure(material):
    """The material's unit cell read from its structure file when that is already here (a
    local path, or a copy already fetched), else None."""
    from dualbench.structure import build_structure

    path = local_structure_file(config["materials"][material], material)
    if path is None or not path.is_file():
        return None
    return build_structure(config["materials"][material]["structure"], path)


CRYSTAL_KEYS = ("structure", "supercell", "absorber", "edge")


def get_crystal_params(wildcards):
    """What the FEFF and experiment-fit jobs read of a material: its crystal, supercell,
    absorber and edge, so that editing its DFT frames, MD or experiment file reruns none
    of them."""
    material = config["materials"][wildcards.material]
    return canonical_params({k: material[k] for k in CRYSTAL_KEYS if k in material})


def get_material_elements(material):
    """The chemical elements of a material (its structure's symbols, or the elements of
    its structure file when that is here already), or None when not known yet (then
    prepare_frames reads them from the fetched structure file)."""
    symbols = config["materials"][material]["structure"].get("symbols")
    if symbols:
        return sorted(set(symbols))
    cell = get_local_structure(material)
    return sorted(set(cell.get_chemical_symbols())) if cell is not None else None


def has_experiment(material):
    return config["materials"][material]["experiment"] is not None


def get_runs(material, arm="dft"):
    """Every (model, n, seed) of the sweep as wildcard dicts: of the DFT arm (every N), or
    of the EXAFS arm (`arm="exafs"`: the N of sweep.exafs_n_frames, the seeds of
    sweep.exafs_seeds)."""
    ns, seeds = (EXAFS_N, EXAFS_SEEDS) if arm == "exafs" else (N_FRAMES, SEEDS)
    return [
        {"material": material, "model": model, "n": n, "seed": seed}
        for model in MODELS
        for n in ns
        for seed in seeds
        if n == 0 or is_trainable(model)
    ]


def get_run_files(pattern, material, arm="dft"):
    """`pattern` (with {material}, {model}, {n}, {seed}) for every run of a material's
    DFT arm, or of its EXAFS arm (`arm="exafs"`)."""
    return [pattern.format(**run) for run in get_runs(material, arm)]


# Input, param and resource functions of exafs.smk.


def get_feff_potentials_input(wildcards):
    """The structure file (if any) and, for potentials_from: average, the snapshots of the
    first model's smallest-N MD run of the first seed (the vanilla model when N = 0 is
    swept)."""
    inputs = {}
    if "source" in config["materials"][wildcards.material]["structure"]:
        inputs["structure"] = get_data_file(wildcards.material, "structure")
    if config["exafs"]["potentials_from"] == "average":
        inputs["snapshots"] = f"{RUN_DIR}/md/snapshots.extxyz".format(
            material=wildcards.material,
            model=MODELS[0],
            n=EXAFS_N[0],
            seed=EXAFS_SEEDS[0],
        )
    return inputs


def get_feff_paths_input(wildcards):
    """The material's fixed potentials and structure file (if any)."""
    material = wildcards.material
    inputs = {
        "phase": f"{POTENTIALS_DIR.format(material=material)}/phase.pad",
        "xsect": f"{POTENTIALS_DIR.format(material=material)}/xsect.json",
        "meta": f"{POTENTIALS_DIR.format(material=material)}/potentials.json",
    }
    if "source" in config["materials"][material]["structure"]:
        inputs["structure"] = get_data_file(material, "structure")
    return inputs


def get_snapshot_chi_input(wildcards):
    """The run's snapshots, the material's potentials and, for the fast engine, its path
    table."""
    material = wildcards.material
    run = RUN_DIR.format(**dict(wildcards.items()))
    inputs = {
        "snapshots": f"{run}/md/snapshots.extxyz",
        "phase": f"{POTENTIALS_DIR.format(material=material)}/phase.pad",
        "xsect": f"{POTENTIALS_DIR.format(material=material)}/xsect.json",
        "meta": f"{POTENTIALS_DIR.format(material=material)}/potentials.json",
    }
    if config["exafs"]["engine"] == "fast":
        inputs["paths"] = PATH_TABLE.format(material=material)
    return inputs


def get_fit_experiment_input(wildcards):
    """The measured chi(k), the fixed potentials and the structure file (if any)."""
    material = wildcards.material
    inputs = {
        "chi_k": f"{EXPERIMENT_DIR.format(material=material)}/chi_k.csv",
        "phase": f"{POTENTIALS_DIR.format(material=material)}/phase.pad",
        "meta": f"{POTENTIALS_DIR.format(material=material)}/potentials.json",
    }
    if "source" in config["materials"][material]["structure"]:
        inputs["structure"] = get_data_file(material, "structure")
    return inputs


def get_exafs_keys(*keys):
    """The keys of the exafs section a job depends on (so that, e.g., a new S0^2 does not
    rerun FEFF through Snakemake's params trigger), with the material's own cuts
    (materials.<name>.exafs) over the top-level ones."""

    def keys_of(wildcards):
        exafs = material_section(config, wildcards.material, "exafs")
        return canonical_params({key: exafs[key] for key in keys})

    return keys_of


def get_ft(wildcards):
    """The ft section as the material uses it (materials.<name>.ft over the top level)."""
    return canonical_params(material_section(config, wildcards.material, "ft"))


def get_experiment_fit(wildcards):
    """The experiment_fit section as the material uses it (its own keys over the top
    level's)."""
    return canonical_params(
        material_section(config, wildcards.material, "experiment_fit")
    )


def get_snapshot_chi_runtime(wildcards):
    """Minutes for one chunk, with generous headroom: about 2 s per (snapshot, absorber)
    with the feff engine, 0.02 s with the fast one."""
    absorbers = config["exafs"]["absorbers_per_snapshot"] or 256
    seconds = 2.0 if config["exafs"]["engine"] == "feff" else 0.02
    return 10 + int(config["exafs"]["chunk_size"] * absorbers * seconds) // 60


# Input and param functions of summary.smk and plots.smk.


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


def get_md(material):
    """The md section a material's runs use: the study's with the material's keys over it."""
    return material_section(config, material, "md")


def get_md_trajectory(wildcards):
    """The md keys that change a run's trajectory (run_md's params: changing another key,
    such as md.device, does not rerun finished MD)."""
    return canonical_params(trajectory_params(get_md(wildcards.material)))


def get_exafs_chunks(material):
    """EXAFS chunks per run of a material, known before the MD runs: exafs.snapshots (or
    its MD's snapshot count when 0) over exafs.chunk_size."""
    return chunk_count(config, material)


def get_chunk_files(wildcards):
    """The snapshot-chi chunks of a run, averaged by average_chi."""
    return expand(
        f"{RUN_DIR}/exafs/chunks/{{chunk}}.npz",
        chunk=range(get_exafs_chunks(wildcards.material)),
        **wildcards,
    )


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


def get_final_output():
    """The targets of the `all` rule. Per material: its data, summary, convergence record and
    figures, every run's DFT metrics and every EXAFS-arm run's MD diagnostics; and the
    leaderboard of all materials."""
    figures = ("fig2", "fig3", "force_parity", "exafs_convergence", "sigma2")
    targets = []
    for material in MATERIALS:
        targets += [
            get_data_file(material, role) for role in get_material_sources(material)
        ]
        folder = MATERIAL_DIR.format(material=material)
        targets += [f"{folder}/summary.csv", f"{folder}/convergence.json"]
        targets += [f"{folder}/figures/{name}.png" for name in figures]
        targets += get_run_files(f"{RUN_DIR}/dft_metrics.json", material)
        for name in ("diagnostics.json", "sigma2.csv", "rdf.csv"):
            targets += get_run_files(f"{RUN_DIR}/md/{name}", material, "exafs")
    targets += [LEADERBOARD_CSV, f"{LEADERBOARD_FIGURE}.png", LEADERBOARD_PAGE]
    return targets

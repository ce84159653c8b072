# Shared helpers: the study config (prepared by the package), the paths of the study
# (defined once, below), wildcard constraints, the data sources, models and runs of a
# material, and get_final_output(), the targets of the `all` rule.  The get_* input and
# param functions of the rules files are in common_dft.smk (data, label, dft),
# common_exafs.smk (md, exafs) and common_results.smk (summary, plots, leaderboard); the
# rules files hold rules only.

from dualbench.schema import canonical, exafs_n_frames, exafs_seeds
from dualbench.models.backend import conda_env, get_backend, kinds
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
LEADERBOARD_DIR = "results/suite"
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


def is_trainable(model):
    """Whether a model's kind has a fine-tuning trainer here (kind ase has none)."""
    return get_backend(config["models"][model]["kind"]).trainable


def get_local_structure(material):
    """The material's unit cell read from its structure file when that is already here (a
    local path, or a copy already fetched), else None."""
    from dualbench.structure import build_structure

    path = local_structure_file(config["materials"][material], material)
    if path is None or not path.is_file():
        return None
    return build_structure(config["materials"][material]["structure"], path)


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

# Shared helpers: validated config, wildcard constraints, the input and param functions of
# every rules file, and the targets of the `all` rule.  The rules files hold rules only,
# with their paths written out in full (as `snakemake --lint` asks).

import os

from dualbench.config import (
    ConfigError,
    canonical,
    canonical_config,
    check_structure,
    exafs_n_frames,
    load_yaml,
    prepare_config,
)
from dualbench.exafs import chunk_count
from dualbench.fetch import MIRROR_ENV, mirror_folder, source_filename
from dualbench.training import scheduled
from dualbench.label import LabelSettings
from dualbench.models.backend import conda_env, get_backend, kinds
from dualbench.md import trajectory_params
from dualbench.plots import run_label
from dualbench.reference import resolve_reference

# A config given with --configfile replaces config/config.yaml instead of being merged
# into it (Snakemake's default), so that another study does not inherit its materials.
CONFIG_FILES = list(workflow.overwrite_configfiles or workflow.configfiles)
if workflow.overwrite_configfiles:
    config.clear()
    config.update(workflow.config_settings.overwrite_config)

# Snakemake read the files already, keeping the last of a duplicate key: read them again
# to refuse one, with its line.
for _path in CONFIG_FILES:
    load_yaml(_path)

# Validate before any job: a bad key stops here with its dotted name and the file.  The
# config's mappings are then put in sorted key order (canonical), so that a config written
# back with its keys in another order gives every rule the same params (Snakemake compares
# params by repr, and a dict's repr follows its key order).
CONFIG_SOURCE = ", ".join(map(str, CONFIG_FILES))
_prepared = canonical_config(prepare_config(config, CONFIG_SOURCE))
config.clear()
config.update(_prepared)

# A relative $DUALBENCH_DATA_MIRROR means the folder it was given in (the shell's), not
# the working directory of a job (`--directory`): pass jobs the absolute path.
if os.environ.get(MIRROR_ENV):
    os.environ[MIRROR_ENV] = str(mirror_folder())

MATERIALS = list(config["materials"])
MODELS = list(config["models"])
N_FRAMES = sorted(config["sweep"]["n_frames"])
# The N whose models also run MD and the EXAFS arm (sweep.exafs_n_frames; default all).
EXAFS_N = exafs_n_frames(config)
SEEDS = config["sweep"]["seeds"]
DATA_ROLES = ("dft_train", "dft_test", "experiment", "structure")

# One folder per (material, model, N, seed), results/{material}/{model}/n{n}/seed{seed}:
# model, DFT metrics, MD and EXAFS.

# EXAFS chunks per run, known before the MD runs: exafs.snapshots (or the MD's snapshot
# count when 0) over exafs.chunk_size.
EXAFS_CHUNKS = chunk_count(config)


wildcard_constraints:
    material="|".join(MATERIALS),
    model="|".join(MODELS),
    n=r"\d+",
    seed=r"\d+",
    role="|".join(DATA_ROLES),


def material_sources(material):
    """The data sources of a material by role (absent or null roles left out)."""
    entry = config["materials"][material]
    sources = {
        "dft_train": entry["dft"]["train"],
        "dft_test": entry["dft"]["test"],
        "experiment": entry["experiment"],
        "structure": entry["structure"].get("source"),
    }
    return {role: src for role, src in sources.items() if src is not None}


def source_of(material, role):
    """The source mapping behind resources/{material}/{role}/."""
    return material_sources(material)[role]


def canonical_params(value):
    """A param with every mapping in sorted key order (see `canonical` above): wrap each
    dict-valued param in it, so that key order never triggers Snakemake's params rerun.
    """
    return canonical(value)


def data_file(material, role):
    """Where a source's file lies: in resources/ after fetch_data checked it (downloads, and
    local files with a sha256, such as the committed DFT frames), or the local path as given.
    """
    source = source_of(material, role)
    if "path" in source and not source.get("sha256"):
        return source["path"]
    return f"resources/{material}/{role}/{source_filename(source)}"


def local_source(wildcards):
    """The local file behind a checked copy in resources/ (so an edit reruns the copy)."""
    source = source_of(wildcards.material, wildcards.role)
    return [source["path"]] if "path" in source else []


def structure_input(wildcards):
    """The fetched structure file when the material's structure comes from a file."""
    if "source" in config["materials"][wildcards.material]["structure"]:
        return [data_file(wildcards.material, "structure")]
    return []


def dft_frames(material, split):
    """The DFT frames file of a material's `train` or `test` split: the configured file, the
    labelled frames when the config has `dft.label`, or [] (no test file: held out)."""
    if config["materials"][material]["dft"]["label"] is not None:
        return f"results/{material}/dft/labelled/{split}.extxyz"
    role = f"dft_{split}"
    return data_file(material, role) if role in material_sources(material) else []


def label_settings(material):
    """The `dft.label` settings of a material (schema defaults filled)."""
    return LabelSettings.from_config(config["materials"][material]["dft"]["label"])


def sampling_model_name(material):
    """The model (a key of `models`) whose vanilla MD is sampled for labelling."""
    return (
        config["materials"][material]["dft"]["label"]["sampling"]["model"] or MODELS[0]
    )


def sampling_model(material):
    """The spec params of the pretrained model whose MD is sampled."""
    return model_params(sampling_model_name(material))


def model_params(name):
    """A model's config entry as params, its unset keys (null, {}) left out: adding a
    schema key does not rerun the models that leave it unset."""
    entry = config["models"][name]
    return canonical_params(
        {k: v for k, v in entry.items() if v is not None and v != {}}
    )


# The conda env of each model kind's rules (relative to workflow/rules/). A `kind: ase`
# calculator's own package must be added to envs/ml.yaml for `--sdm conda`.
MODEL_ENVS = {kind: f"../../{conda_env(kind)}" for kind in kinds()}


def model_env(wildcards):
    """The conda env of the rule's model (by its kind)."""
    return MODEL_ENVS[config["models"][wildcards.model]["kind"]]


def sampling_env(wildcards):
    """The conda env of a material's sampling model."""
    return MODEL_ENVS[config["models"][sampling_model_name(wildcards.material)]["kind"]]


def finetune_params(n):
    """The finetune settings at N = n (schedule applied; device left to the config, so
    that moving to a GPU does not rerun fine-tuning)."""
    settings = scheduled(config["finetune"], n)
    return canonical_params({k: v for k, v in settings.items() if k != "device"})


def trainable(model):
    """Whether a model's kind has a fine-tuning trainer here (kind ase has none)."""
    return get_backend(config["models"][model]["kind"]).trainable


def label_chunks(wildcards):
    """The labelled chunk files of a material with `dft.label`: per sampling round, one
    per labelling job."""
    settings = label_settings(wildcards.material)
    return [
        f"results/{wildcards.material}/dft/label/round{r}/chunk{i}.extxyz"
        for r in range(len(settings.sampling_rounds()))
        for i in range(settings.n_chunks(r))
    ]


def round_sampling(wildcards):
    """What round `wildcards.round` samples: the shared sampling settings, the labelled
    cell and that round's counts (so that adding a round does not rerun earlier ones).
    """
    label = config["materials"][wildcards.material]["dft"]["label"]
    sampling = {k: v for k, v in label["sampling"].items() if k != "rounds"}
    rounds = label_settings(wildcards.material).sampling_rounds()
    r = int(wildcards.round)
    if r >= len(rounds):
        raise ValueError(f"material {wildcards.material} has no sampling round {r}")
    sampling.update(vars(rounds[r]))
    return canonical_params({"supercell": label["supercell"], "sampling": sampling})


def label_theory(wildcards):
    """The labelling settings but the sampling (the level of theory, chunking and reuse)."""
    label = config["materials"][wildcards.material]["dft"]["label"]
    return canonical_params({k: v for k, v in label.items() if k != "sampling"})


def label_reuse(wildcards):
    """The labelled files a material's labelling reuses frames from."""
    return list(label_settings(wildcards.material).reuse)


def local_structure(material):
    """The unit cell of a material whose structure is a file that can be read now (a local
    path, or a copy already fetched), else None."""
    from dualbench.structure import build_structure

    entry = config["materials"][material]["structure"]
    if "source" not in entry:
        return None
    path = data_file(material, "structure")
    if not os.path.isfile(path):
        return None
    try:
        return build_structure(entry, path)
    except ValueError as err:
        raise ConfigError(
            CONFIG_SOURCE, f"materials.{material}.structure.source", str(err)
        )


# A structure file that is already here is checked before any job, as `symbols` are by
# prepare_config: absorber among its elements, the EXAFS cluster inside the supercell.
# (A structure still to be downloaded is checked by fetch_data, the first job to see it.)
for _material in MATERIALS:
    _cell = local_structure(_material)
    if _cell is not None:
        check_structure(config, _material, _cell, CONFIG_SOURCE)


def material_elements(material):
    """The chemical elements of a material (its structure's symbols, or the elements of
    its structure file when that is here already), or None when not known yet (then
    prepare_frames reads them from the fetched structure file)."""
    symbols = config["materials"][material]["structure"].get("symbols")
    if symbols:
        return sorted(set(symbols))
    cell = local_structure(material)
    return sorted(set(cell.get_chemical_symbols())) if cell is not None else None


def has_experiment(material):
    return config["materials"][material]["experiment"] is not None


def runs(material, arm="dft"):
    """Every (model, n, seed) of the sweep as wildcard dicts: of the DFT arm (every N), or
    of the EXAFS arm (`arm="exafs"`: the N of sweep.exafs_n_frames)."""
    ns = EXAFS_N if arm == "exafs" else N_FRAMES
    return [
        {"material": material, "model": model, "n": n, "seed": seed}
        for model in MODELS
        for n in ns
        for seed in SEEDS
        if n == 0 or trainable(model)
    ]


def expand_runs(pattern, material, arm="dft"):
    """`pattern` (with {material}, {model}, {n}, {seed}) for every run of a material's
    DFT arm, or of its EXAFS arm (`arm="exafs"`)."""
    return [pattern.format(**run) for run in runs(material, arm)]


# Input, param and resource functions of exafs.smk.


def feff_potentials_input(wildcards):
    """The structure file (if any) and, for potentials_from: average, the snapshots of the
    first model's smallest-N MD run of the first seed (the vanilla model when N = 0 is
    swept)."""
    inputs = {}
    if "source" in config["materials"][wildcards.material]["structure"]:
        inputs["structure"] = data_file(wildcards.material, "structure")
    if config["exafs"]["potentials_from"] == "average":
        inputs["snapshots"] = (
            "results/{material}/{model}/n{n}/seed{seed}/md/snapshots.extxyz".format(
                material=wildcards.material,
                model=MODELS[0],
                n=EXAFS_N[0],
                seed=SEEDS[0],
            )
        )
    return inputs


def feff_paths_input(wildcards):
    """The material's fixed potentials and structure file (if any)."""
    material = wildcards.material
    inputs = {
        "phase": f"results/{material}/exafs/potentials/phase.pad",
        "xsect": f"results/{material}/exafs/potentials/xsect.json",
        "meta": f"results/{material}/exafs/potentials/potentials.json",
    }
    if "source" in config["materials"][material]["structure"]:
        inputs["structure"] = data_file(material, "structure")
    return inputs


def snapshot_chi_input(wildcards):
    """The run's snapshots, the material's potentials and, for the fast engine, its path
    table."""
    material = wildcards.material
    run = f"results/{material}/{wildcards.model}/n{wildcards.n}/seed{wildcards.seed}"
    inputs = {
        "snapshots": f"{run}/md/snapshots.extxyz",
        "phase": f"results/{material}/exafs/potentials/phase.pad",
        "xsect": f"results/{material}/exafs/potentials/xsect.json",
        "meta": f"results/{material}/exafs/potentials/potentials.json",
    }
    if config["exafs"]["engine"] == "fast":
        inputs["paths"] = f"results/{material}/exafs/paths/paths.npz"
    return inputs


def fit_experiment_input(wildcards):
    """The measured chi(k), the fixed potentials and the structure file (if any)."""
    material = wildcards.material
    inputs = {
        "chi_k": f"results/{material}/experiment/chi_k.csv",
        "phase": f"results/{material}/exafs/potentials/phase.pad",
        "meta": f"results/{material}/exafs/potentials/potentials.json",
    }
    if "source" in config["materials"][material]["structure"]:
        inputs["structure"] = data_file(material, "structure")
    return inputs


def exafs_keys(*keys):
    """The keys of the exafs section a job depends on (so that, e.g., a new S0^2 does not
    rerun FEFF through Snakemake's params trigger)."""
    return canonical_params({key: config["exafs"][key] for key in keys})


def snapshot_chi_runtime(wildcards):
    """Minutes for one chunk, with generous headroom: about 2 s per (snapshot, absorber)
    with the feff engine, 0.02 s with the fast one."""
    absorbers = config["exafs"]["absorbers_per_snapshot"] or 256
    seconds = 2.0 if config["exafs"]["engine"] == "feff" else 0.02
    return 10 + int(config["exafs"]["chunk_size"] * absorbers * seconds) // 60


# Input and param functions of summary.smk and plots.smk.


def summary_inputs(wildcards):
    """Every run's DFT metrics and, with an experiment, the EXAFS comparison."""
    inputs = {
        "dft": expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/dft_metrics.json",
            wildcards.material,
        )
    }
    if has_experiment(wildcards.material):
        inputs["exafs"] = f"results/{wildcards.material}/exafs/comparison.csv"
    elif has_reference(wildcards.material):
        inputs["reference"] = (
            f"results/{wildcards.material}/exafs/reference_comparison.csv"
        )
    return inputs


def has_reference(material):
    """Whether a material is scored against a reference model (no experiment, and
    exafs.reference_model set)."""
    return (
        not has_experiment(material) and config["exafs"]["reference_model"] is not None
    )


def reference_run(material):
    """[model, N] of a material's reference run (exafs.reference_model resolved)."""
    model, n = resolve_reference(config["exafs"]["reference_model"], MODELS, EXAFS_N)
    return [model, n]


def plot_seed():
    """The seed whose runs the per-run figures (Fig. 2, force parity) show."""
    return SEEDS[0] if config["plots"]["seed"] is None else config["plots"]["seed"]


def fig2_runs():
    """(model, n) pairs of Fig. 2: vanilla and the configured (default: the EXAFS arm's
    largest) N."""
    tuned = config["plots"]["fig2_n_frames"] or [n for n in EXAFS_N[-1:] if n > 0]
    ns = ([0] if 0 in EXAFS_N else []) + sorted(tuned)
    return [(model, n) for model in MODELS for n in ns if n == 0 or trainable(model)]


def run_path(pattern, material, model, n):
    """`pattern` (with {material}, {model}, {n}, {seed}) for a run of the plotted seed."""
    return pattern.format(material=material, model=model, n=n, seed=plot_seed())


def fig2_inputs(wildcards):
    """The simulated chi(k) of the Fig. 2 runs and, with an experiment, the measured chi(k)
    and the comparison."""
    material = wildcards.material
    inputs = {
        "sims": [
            run_path(
                "results/{material}/{model}/n{n}/seed{seed}/exafs/chi_k.csv",
                material,
                model,
                n,
            )
            for model, n in fig2_runs()
        ]
    }
    if has_experiment(material):
        inputs["experiment"] = f"results/{material}/experiment/chi_k.csv"
        inputs["comparison"] = f"results/{material}/exafs/comparison.csv"
    return inputs


def parity_inputs(wildcards):
    """The force parity tables of the Fig. 2 runs."""
    return [
        run_path(
            "results/{material}/{model}/n{n}/seed{seed}/force_parity.csv",
            wildcards.material,
            model,
            n,
        )
        for model, n in fig2_runs()
    ]


def sigma2_inputs(wildcards):
    """Every run's MD sigma^2 and, with an experiment, its shell fit."""
    material = wildcards.material
    inputs = {
        "sigma2": expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/md/sigma2.csv",
            material,
            "exafs",
        )
    }
    if has_experiment(material):
        inputs["fit"] = f"results/{material}/experiment/fit.json"
    return inputs


def production_ps():
    """Production time of every MD run in ps (convergence.json sizes the MD from it)."""
    return config["md"]["production_steps"] * config["md"]["timestep_fs"] / 1000


def convergence_inputs(wildcards):
    """The summary and, with an experiment, its fit (the yardstick's E0 and S0^2 errors)."""
    material = wildcards.material
    inputs = {"summary": f"results/{material}/summary.csv"}
    if has_experiment(material):
        inputs["fit"] = f"results/{material}/experiment/fit.json"
    return inputs


def fig2_title(wildcards):
    """The title of Fig. 2: material, absorber, edge and temperature."""
    entry = config["materials"][wildcards.material]
    return (
        f"{wildcards.material}: {entry['absorber']} "
        f"{entry['edge']} edge, "
        f"{entry['temperature_K']:g} K"
    )


# What the `all` rule asks for.  Each rules file appends its own final outputs.
# RUN_TARGETS are patterns with {material}, {model}, {n} and {seed} (expanded for every
# run of the sweep), EXAFS_RUN_TARGETS the same for the runs of the EXAFS arm, and
# MATERIAL_TARGETS patterns with {material} only.  See all_outputs().
RUN_TARGETS = []
EXAFS_RUN_TARGETS = []
MATERIAL_TARGETS = []


def all_outputs():
    """The targets of `rule all`, built from RUN_TARGETS and MATERIAL_TARGETS."""
    targets = []
    for material in MATERIALS:
        targets += [data_file(material, role) for role in material_sources(material)]
        targets += [p.format(material=material) for p in MATERIAL_TARGETS]
        for pattern in RUN_TARGETS:
            targets += expand_runs(pattern, material)
        for pattern in EXAFS_RUN_TARGETS:
            targets += expand_runs(pattern, material, "exafs")
    return targets

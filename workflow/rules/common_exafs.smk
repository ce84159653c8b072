# Input, param and resource functions of md.smk and exafs.smk: a material's MD settings,
# the FEFF and fit jobs' crystal, and the EXAFS chunks of a run.

from dualbench.schema import material_section
from dualbench.exafs import chunk_count
from dualbench.md.settings import trajectory_params

CRYSTAL_KEYS = ("structure", "supercell", "absorber", "edge")


def get_crystal_params(wildcards):
    """What the FEFF and experiment-fit jobs read of a material's entry: its crystal,
    supercell, absorber and edge, so that editing its DFT frames or temperature reruns
    none of them (their file inputs, the measured chi(k) or MD snapshots, still do)."""
    material = config["materials"][wildcards.material]
    return canonical_params({k: material[k] for k in CRYSTAL_KEYS if k in material})


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

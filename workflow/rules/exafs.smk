# EXAFS arm: FEFF8L scattering potentials once per material and, for the fast engine,
# FEFF's path table of the ideal supercell once per material; chi(k) of chunks of MD
# snapshots (one job per chunk, never one per snapshot) with exafs.engine, the
# configuration average, the measured spectrum and the comparison (one E0 shift shared
# by every run of a material unless exafs.e0_shift says otherwise).

from dualbench.exafs import chunk_count

# Chunks per run, known before the MD runs: exafs.snapshots (or the MD's snapshot
# count when 0) over exafs.chunk_size.
EXAFS_CHUNKS = chunk_count(config)
POTENTIALS = "results/{material}/exafs/potentials"
PATHS = "results/{material}/exafs/paths"
EXPERIMENT = "results/{material}/experiment"


def feff_potentials_input(wildcards):
    """The structure file (if any) and, for potentials_from: average, the snapshots of the
    first model's smallest-N run of the first seed (the vanilla model when N = 0 is swept).
    """
    inputs = {}
    if "source" in config["materials"][wildcards.material]["structure"]:
        inputs["structure"] = data_file(wildcards.material, "structure")
    if config["exafs"]["potentials_from"] == "average":
        inputs["snapshots"] = (RUN + "/md/snapshots.extxyz").format(
            material=wildcards.material, model=MODELS[0], n=N_FRAMES[0], seed=SEEDS[0]
        )
    return inputs


def feff_paths_input(wildcards):
    """The material's fixed potentials and structure file (if any)."""
    inputs = {
        "phase": POTENTIALS.format(material=wildcards.material) + "/phase.pad",
        "xsect": POTENTIALS.format(material=wildcards.material) + "/xsect.json",
        "meta": POTENTIALS.format(material=wildcards.material) + "/potentials.json",
    }
    if "source" in config["materials"][wildcards.material]["structure"]:
        inputs["structure"] = data_file(wildcards.material, "structure")
    return inputs


def snapshot_chi_input(wildcards):
    """The run's snapshots, the material's potentials and, for the fast engine, its path
    table."""
    run = RUN.format(
        material=wildcards.material,
        model=wildcards.model,
        n=wildcards.n,
        seed=wildcards.seed,
    )
    inputs = {
        "snapshots": run + "/md/snapshots.extxyz",
        "phase": POTENTIALS.format(material=wildcards.material) + "/phase.pad",
        "xsect": POTENTIALS.format(material=wildcards.material) + "/xsect.json",
        "meta": POTENTIALS.format(material=wildcards.material) + "/potentials.json",
    }
    if config["exafs"]["engine"] == "fast":
        inputs["paths"] = PATHS.format(material=wildcards.material) + "/paths.npz"
    return inputs


def exafs_keys(*keys):
    """The keys of the exafs section a rule depends on (so that, e.g., a new S0^2 does not
    rerun FEFF through Snakemake's params trigger)."""
    return canonical_params({key: config["exafs"][key] for key in keys})


def snapshot_chi_runtime(wildcards):
    """Minutes for one chunk, with generous headroom: about 2 s per (snapshot, absorber)
    with the feff engine, 0.02 s with the fast one."""
    absorbers = config["exafs"]["absorbers_per_snapshot"] or 256
    seconds = 2.0 if config["exafs"]["engine"] == "feff" else 0.02
    return 10 + int(config["exafs"]["chunk_size"] * absorbers * seconds) // 60


rule feff_potentials:
    input:
        unpack(feff_potentials_input),
    output:
        phase=POTENTIALS + "/phase.pad",
        xsect=POTENTIALS + "/xsect.json",
        meta=POTENTIALS + "/potentials.json",
        feff_inp=POTENTIALS + "/feff.inp",
    log:
        LOGS + "/feff_potentials.log",
    benchmark:
        BENCH + "/feff_potentials.tsv"
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        material=lambda wc: canonical_params(config["materials"][wc.material]),
        exafs=exafs_keys(
            "cluster_radius_A", "rmax_A", "nleg", "potentials_from", "scf_radius_A"
        ),
        out_dir=lambda wc: POTENTIALS.format(material=wc.material),
    script:
        "../scripts/feff_potentials.py"


rule feff_paths:
    input:
        unpack(feff_paths_input),
    output:
        PATHS + "/paths.npz",
    log:
        LOGS + "/feff_paths.log",
    benchmark:
        BENCH + "/feff_paths.tsv"
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        material=lambda wc: canonical_params(config["materials"][wc.material]),
        exafs=exafs_keys("cluster_radius_A", "rmax_A", "nleg", "criteria_pct"),
        potentials_dir=lambda wc: POTENTIALS.format(material=wc.material),
    script:
        "../scripts/feff_paths.py"


rule snapshot_chi:
    input:
        unpack(snapshot_chi_input),
    output:
        RUN + "/exafs/chunks/{chunk}.npz",
    log:
        LOGS + "/snapshot_chi/{model}/n{n}/seed{seed}/{chunk}.log",
    benchmark:
        BENCH + "/snapshot_chi/{model}/n{n}/seed{seed}/{chunk}.tsv"
    wildcard_constraints:
        chunk=r"\d+",
    conda:
        "../../envs/exafs.yaml"
    # feff engine: FEFF runs are subprocesses, one per thread at once; fast: threads
    # share the snapshots.
    threads: 2
    resources:
        mem_mb=2000,
        runtime=snapshot_chi_runtime,
    params:
        exafs=exafs_keys(
            "engine",
            "cluster_radius_A",
            "rmax_A",
            "nleg",
            "criteria_pct",
            "snapshots",
            "absorbers_per_snapshot",
            "chunk_size",
        ),
        edge=lambda wc: config["materials"][wc.material]["edge"],
        potentials_dir=lambda wc: POTENTIALS.format(material=wc.material),
        chunk=lambda wc: int(wc.chunk),
        n_chunks=EXAFS_CHUNKS,
        seed=lambda wc: int(wc.seed),
    script:
        "../scripts/snapshot_chi.py"


rule average_chi:
    input:
        chunks=expand(
            RUN + "/exafs/chunks/{chunk}.npz",
            chunk=range(EXAFS_CHUNKS),
            allow_missing=True,
        ),
    output:
        chi_k=RUN + "/exafs/chi_k.csv",
        chi_r=RUN + "/exafs/chi_r.csv",
        convergence=RUN + "/exafs/convergence.csv",
        snapshots=RUN + "/exafs/chi_snapshots.npz",
    log:
        LOGS + "/average_chi/{model}/n{n}/seed{seed}.log",
    benchmark:
        BENCH + "/average_chi/{model}/n{n}/seed{seed}.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        ft=canonical_params(config["ft"]),
    script:
        "../scripts/average_chi.py"


rule experiment_chi:
    input:
        data=lambda wc: data_file(wc.material, "experiment"),
    output:
        chi_k=EXPERIMENT + "/chi_k.csv",
        chi_r=EXPERIMENT + "/chi_r.csv",
        summary=EXPERIMENT + "/experiment.json",
    log:
        LOGS + "/experiment_chi.log",
    benchmark:
        BENCH + "/experiment_chi.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        element=lambda wc: config["materials"][wc.material]["absorber"],
        edge=lambda wc: config["materials"][wc.material]["edge"],
        format=lambda wc: config["materials"][wc.material]["experiment"]["format"],
        columns=lambda wc: config["materials"][wc.material]["experiment_columns"],
        experiment=canonical_params(config["experiment"]),
        ft=canonical_params(config["ft"]),
        out_dir=lambda wc: EXPERIMENT.format(material=wc.material),
    script:
        "../scripts/experiment_chi.py"


def fit_experiment_input(wildcards):
    """The measured chi(k), the fixed potentials and the structure file (if any)."""
    inputs = {
        "chi_k": EXPERIMENT.format(material=wildcards.material) + "/chi_k.csv",
        "phase": POTENTIALS.format(material=wildcards.material) + "/phase.pad",
        "meta": POTENTIALS.format(material=wildcards.material) + "/potentials.json",
    }
    if "source" in config["materials"][wildcards.material]["structure"]:
        inputs["structure"] = data_file(wildcards.material, "structure")
    return inputs


rule fit_experiment:
    input:
        unpack(fit_experiment_input),
    output:
        EXPERIMENT + "/fit.json",
    log:
        LOGS + "/fit_experiment.log",
    benchmark:
        BENCH + "/fit_experiment.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        material=lambda wc: canonical_params(config["materials"][wc.material]),
        exafs=exafs_keys("cluster_radius_A"),
        ft=canonical_params(config["ft"]),
        fit=canonical_params(config["experiment_fit"]),
        potentials_dir=lambda wc: POTENTIALS.format(material=wc.material),
    script:
        "../scripts/fit_experiment.py"


rule compare_exafs:
    input:
        experiment=EXPERIMENT + "/chi_k.csv",
        fit=EXPERIMENT + "/fit.json",
        simulations=lambda wc: expand_runs(RUN + "/exafs/chi_k.csv", wc.material),
        snapshots=lambda wc: expand_runs(RUN + "/exafs/chi_snapshots.npz", wc.material),
    output:
        csv="results/{material}/exafs/comparison.csv",
        json="results/{material}/exafs/comparison.json",
    log:
        LOGS + "/compare_exafs.log",
    benchmark:
        BENCH + "/compare_exafs.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material),
        exafs=exafs_keys("s02", "e0_shift"),
        ft=canonical_params(config["ft"]),
    script:
        "../scripts/compare_exafs.py"

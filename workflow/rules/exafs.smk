# EXAFS arm: FEFF8L scattering potentials once per material and, for the fast engine,
# FEFF's path table of the ideal supercell once per material; chi(k) of chunks of MD
# snapshots (one job per chunk, never one per snapshot) with exafs.engine, the
# configuration average, the measured spectrum and the comparison (one E0 shift shared
# by every run of a material unless exafs.e0_shift says otherwise).


rule feff_potentials:
    input:
        unpack(feff_potentials_input),
    output:
        phase="results/{material}/exafs/potentials/phase.pad",
        xsect="results/{material}/exafs/potentials/xsect.json",
        meta="results/{material}/exafs/potentials/potentials.json",
        feff_inp="results/{material}/exafs/potentials/feff.inp",
    log:
        "results/{material}/logs/feff_potentials.log",
    benchmark:
        "results/{material}/benchmarks/feff_potentials.tsv"
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
        out_dir=lambda wc: f"results/{wc.material}/exafs/potentials",
    script:
        "../scripts/feff_potentials.py"


rule feff_paths:
    input:
        unpack(feff_paths_input),
    output:
        "results/{material}/exafs/paths/paths.npz",
    log:
        "results/{material}/logs/feff_paths.log",
    benchmark:
        "results/{material}/benchmarks/feff_paths.tsv"
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        material=lambda wc: canonical_params(config["materials"][wc.material]),
        exafs=exafs_keys("cluster_radius_A", "rmax_A", "nleg", "criteria_pct"),
        potentials_dir=lambda wc: f"results/{wc.material}/exafs/potentials",
    script:
        "../scripts/feff_paths.py"


rule snapshot_chi:
    input:
        unpack(snapshot_chi_input),
    output:
        "results/{material}/{model}/n{n}/seed{seed}/exafs/chunks/{chunk}.npz",
    log:
        "results/{material}/logs/snapshot_chi/{model}/n{n}/seed{seed}/{chunk}.log",
    benchmark:
        "results/{material}/benchmarks/snapshot_chi/{model}/n{n}/seed{seed}/{chunk}.tsv"
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
        potentials_dir=lambda wc: f"results/{wc.material}/exafs/potentials",
        chunk=lambda wc: int(wc.chunk),
        n_chunks=EXAFS_CHUNKS,
        seed=lambda wc: int(wc.seed),
    script:
        "../scripts/snapshot_chi.py"


rule average_chi:
    input:
        chunks=expand(
            "results/{material}/{model}/n{n}/seed{seed}/exafs/chunks/{chunk}.npz",
            chunk=range(EXAFS_CHUNKS),
            allow_missing=True,
        ),
    output:
        chi_k="results/{material}/{model}/n{n}/seed{seed}/exafs/chi_k.csv",
        chi_r="results/{material}/{model}/n{n}/seed{seed}/exafs/chi_r.csv",
        convergence="results/{material}/{model}/n{n}/seed{seed}/exafs/convergence.csv",
        snapshots="results/{material}/{model}/n{n}/seed{seed}/exafs/chi_snapshots.npz",
    log:
        "results/{material}/logs/average_chi/{model}/n{n}/seed{seed}.log",
    benchmark:
        "results/{material}/benchmarks/average_chi/{model}/n{n}/seed{seed}.tsv"
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
        chi_k="results/{material}/experiment/chi_k.csv",
        chi_r="results/{material}/experiment/chi_r.csv",
        summary="results/{material}/experiment/experiment.json",
    log:
        "results/{material}/logs/experiment_chi.log",
    benchmark:
        "results/{material}/benchmarks/experiment_chi.tsv"
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
        out_dir=lambda wc: f"results/{wc.material}/experiment",
    script:
        "../scripts/experiment_chi.py"


rule fit_experiment:
    input:
        unpack(fit_experiment_input),
    output:
        "results/{material}/experiment/fit.json",
    log:
        "results/{material}/logs/fit_experiment.log",
    benchmark:
        "results/{material}/benchmarks/fit_experiment.tsv"
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
        potentials_dir=lambda wc: f"results/{wc.material}/exafs/potentials",
    script:
        "../scripts/fit_experiment.py"


rule compare_reference:
    input:
        simulations=lambda wc: expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/exafs/chi_k.csv",
            wc.material,
            "exafs",
        ),
        snapshots=lambda wc: expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/exafs/chi_snapshots.npz",
            wc.material,
            "exafs",
        ),
    output:
        "results/{material}/exafs/reference_comparison.csv",
    log:
        "results/{material}/logs/compare_reference.log",
    benchmark:
        "results/{material}/benchmarks/compare_reference.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material, "exafs"),
        reference=lambda wc: reference_run(wc.material),
        ft=canonical_params(config["ft"]),
    script:
        "../scripts/compare_reference.py"


rule compare_exafs:
    input:
        experiment="results/{material}/experiment/chi_k.csv",
        fit="results/{material}/experiment/fit.json",
        simulations=lambda wc: expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/exafs/chi_k.csv",
            wc.material,
            "exafs",
        ),
        snapshots=lambda wc: expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/exafs/chi_snapshots.npz",
            wc.material,
            "exafs",
        ),
    output:
        csv="results/{material}/exafs/comparison.csv",
        json="results/{material}/exafs/comparison.json",
    log:
        "results/{material}/logs/compare_exafs.log",
    benchmark:
        "results/{material}/benchmarks/compare_exafs.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material, "exafs"),
        exafs=exafs_keys("s02", "e0_shift"),
        ft=canonical_params(config["ft"]),
    script:
        "../scripts/compare_exafs.py"

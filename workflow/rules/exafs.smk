# EXAFS arm: FEFF8L scattering potentials once per material and, for the fast engine,
# FEFF's path table of the ideal supercell once per material; chi(k) of chunks of MD
# snapshots (one job per chunk, never one per snapshot) with exafs.engine, the
# configuration average, the measured spectrum and the comparison (one E0 shift shared
# by every run of a material unless exafs.e0_shift says otherwise).


rule feff_potentials:
    input:
        unpack(get_feff_potentials_input),
    output:
        phase=f"{POTENTIALS_DIR}/phase.pad",
        xsect=f"{POTENTIALS_DIR}/xsect.json",
        meta=f"{POTENTIALS_DIR}/potentials.json",
        feff_inp=f"{POTENTIALS_DIR}/feff.inp",
    log:
        f"{MATERIAL_DIR}/logs/feff_potentials.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/feff_potentials.tsv"
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        material=get_crystal_params,
        exafs=get_exafs_keys(
            "cluster_radius_A", "rmax_A", "nleg", "potentials_from", "scf_radius_A"
        ),
        out_dir=lambda wc: POTENTIALS_DIR.format(material=wc.material),
    script:
        "../scripts/feff_potentials.py"


rule feff_paths:
    input:
        unpack(get_feff_paths_input),
    output:
        PATH_TABLE,
    log:
        f"{MATERIAL_DIR}/logs/feff_paths.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/feff_paths.tsv"
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        material=get_crystal_params,
        exafs=get_exafs_keys("cluster_radius_A", "rmax_A", "nleg", "criteria_pct"),
        potentials_dir=lambda wc: POTENTIALS_DIR.format(material=wc.material),
    script:
        "../scripts/feff_paths.py"


rule snapshot_chi:
    input:
        unpack(get_snapshot_chi_input),
    output:
        f"{RUN_DIR}/exafs/chunks/{{chunk}}.npz",
    log:
        f"{MATERIAL_DIR}/logs/snapshot_chi/{RUN_ID}/{{chunk}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/snapshot_chi/{RUN_ID}/{{chunk}}.tsv"
    wildcard_constraints:
        chunk=r"\d+",
    # Score a run as soon as its input exists, before starting more MD or training.
    priority: 10
    conda:
        "../../envs/exafs.yaml"
    # One thread, as every scoring job: a 2-thread job waits for two free cores at once,
    # which beside single-thread MD (--set-threads run_md=1) comes only at the end of a
    # study. A run's chunks are separate jobs: they are the parallelism.
    threads: 1
    resources:
        mem_mb=2000,
        runtime=get_snapshot_chi_runtime,
    params:
        exafs=get_exafs_keys(
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
        potentials_dir=lambda wc: POTENTIALS_DIR.format(material=wc.material),
        chunk=lambda wc: int(wc.chunk),
        n_chunks=lambda wc: get_exafs_chunks(wc.material),
        seed=lambda wc: int(wc.seed),
    script:
        "../scripts/snapshot_chi.py"


rule average_chi:
    input:
        chunks=get_chunk_files,
    output:
        chi_k=f"{RUN_DIR}/exafs/chi_k.csv",
        chi_r=f"{RUN_DIR}/exafs/chi_r.csv",
        convergence=f"{RUN_DIR}/exafs/convergence.csv",
        snapshots=f"{RUN_DIR}/exafs/chi_snapshots.npz",
    log:
        f"{MATERIAL_DIR}/logs/average_chi/{RUN_ID}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/average_chi/{RUN_ID}.tsv"
    # Score a run as soon as its input exists, before starting more MD or training.
    priority: 10
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        ft=get_ft,
    script:
        "../scripts/average_chi.py"


rule experiment_chi:
    input:
        data=lambda wc: get_data_file(wc.material, "experiment"),
    output:
        chi_k=f"{MATERIAL_DIR}/experiment/chi_k.csv",
        chi_r=f"{MATERIAL_DIR}/experiment/chi_r.csv",
        summary=f"{MATERIAL_DIR}/experiment/experiment.json",
    log:
        f"{MATERIAL_DIR}/logs/experiment_chi.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/experiment_chi.tsv"
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
        ft=get_ft,
        out_dir=lambda wc: EXPERIMENT_DIR.format(material=wc.material),
    script:
        "../scripts/experiment_chi.py"


rule fit_experiment:
    input:
        unpack(get_fit_experiment_input),
    output:
        f"{MATERIAL_DIR}/experiment/fit.json",
    log:
        f"{MATERIAL_DIR}/logs/fit_experiment.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/fit_experiment.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        material=get_crystal_params,
        exafs=get_exafs_keys("cluster_radius_A"),
        ft=get_ft,
        fit=get_experiment_fit,
        potentials_dir=lambda wc: POTENTIALS_DIR.format(material=wc.material),
    script:
        "../scripts/fit_experiment.py"


rule compare_reference:
    input:
        simulations=lambda wc: get_run_files(
            f"{RUN_DIR}/exafs/chi_k.csv",
            wc.material,
            "exafs",
        ),
        snapshots=lambda wc: get_run_files(
            f"{RUN_DIR}/exafs/chi_snapshots.npz",
            wc.material,
            "exafs",
        ),
    output:
        f"{MATERIAL_DIR}/exafs/reference_comparison.csv",
    log:
        f"{MATERIAL_DIR}/logs/compare_reference.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/compare_reference.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        runs=lambda wc: get_runs(wc.material, "exafs"),
        reference=lambda wc: get_reference_run(wc.material),
        ft=get_ft,
    script:
        "../scripts/compare_reference.py"


rule compare_exafs:
    input:
        experiment=f"{MATERIAL_DIR}/experiment/chi_k.csv",
        fit=f"{MATERIAL_DIR}/experiment/fit.json",
        simulations=lambda wc: get_run_files(
            f"{RUN_DIR}/exafs/chi_k.csv",
            wc.material,
            "exafs",
        ),
        snapshots=lambda wc: get_run_files(
            f"{RUN_DIR}/exafs/chi_snapshots.npz",
            wc.material,
            "exafs",
        ),
    output:
        csv=f"{MATERIAL_DIR}/exafs/comparison.csv",
        json=f"{MATERIAL_DIR}/exafs/comparison.json",
    log:
        f"{MATERIAL_DIR}/logs/compare_exafs.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/compare_exafs.tsv"
    localrule: True
    conda:
        "../../envs/exafs.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        runs=lambda wc: get_runs(wc.material, "exafs"),
        exafs=get_exafs_keys("s02", "e0_shift"),
        ft=get_ft,
    script:
        "../scripts/compare_exafs.py"

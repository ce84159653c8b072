# MD arm: molecular dynamics with every model of the sweep (NVT at the experimental
# lattice, or NPT with md.ensemble: npt), then diagnostics (temperature, pressure and
# lattice statistics, g(r), shell sigma^2).  An MD job killed mid-run (time limit,
# preemption) continues from md_checkpoint.npz in its folder when it runs again; that
# file is not an output, so Snakemake leaves it in place when it cleans up a failed job.
# With md.nuclei: pimd the same rule runs path-integral MD with i-PI (dualbench.md.pimd):
# every bead of a kept step is a snapshot (P times the snapshots), the centroids go to
# centroids.extxyz, and i-PI's checkpoint lives in the md/ipi folder until the run ends.


rule run_md:
    input:
        model=f"{RUN_DIR}/model/model.json",
        structure=get_structure_input,
    output:
        snapshots=f"{RUN_DIR}/md/snapshots.extxyz",
        log=f"{RUN_DIR}/md/md_log.csv",
        supercell=f"{RUN_DIR}/md/supercell.extxyz",
        info=f"{RUN_DIR}/md/md_run.json",
    log:
        f"{MATERIAL_DIR}/logs/run_md/{RUN_ID}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/run_md/{RUN_ID}.tsv"
    conda:
        get_model_env
    threads: 4
    resources:
        # A GPU on Slurm unless md.device is cpu; a local run does not limit `gpu`.
        gpu=0 if config["md"]["device"] == "cpu" else 1,
        mem_mb=8000,
        runtime=120,
    params:
        structure=lambda wc: canonical_params(
            config["materials"][wc.material]["structure"]
        ),
        supercell=lambda wc: config["materials"][wc.material]["supercell"],
        temperature=lambda wc: config["materials"][wc.material]["temperature_K"],
        # Only md keys that change the trajectory (params trigger reruns): checkpoint_every,
        # device and the guards reach the script through the config, so that moving to a
        # GPU, say, does not rerun finished MD.
        md=get_md_trajectory,
    script:
        "../scripts/run_md.py"


rule md_diagnostics:
    input:
        snapshots=f"{RUN_DIR}/md/snapshots.extxyz",
        reference=f"{RUN_DIR}/md/supercell.extxyz",
        log=f"{RUN_DIR}/md/md_log.csv",
    output:
        rdf=f"{RUN_DIR}/md/rdf.csv",
        sigma2=f"{RUN_DIR}/md/sigma2.csv",
        diagnostics=f"{RUN_DIR}/md/diagnostics.json",
    log:
        f"{MATERIAL_DIR}/logs/md_diagnostics/{RUN_ID}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/md_diagnostics/{RUN_ID}.tsv"
    # Score a run as soon as its input exists, before starting more MD or training.
    priority: 10
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=2000,
        runtime=15,
    params:
        absorber=lambda wc: config["materials"][wc.material]["absorber"],
        temperature=lambda wc: config["materials"][wc.material]["temperature_K"],
    script:
        "../scripts/md_diagnostics.py"

# MD arm: molecular dynamics with every model of the sweep (NVT at the experimental
# lattice, or NPT with md.ensemble: npt), then diagnostics (temperature, pressure and
# lattice statistics, g(r), shell sigma^2).  An MD job killed mid-run (time limit,
# preemption) continues from md_checkpoint.npz in its folder when it runs again; that
# file is not an output, so Snakemake leaves it in place when it cleans up a failed job.


rule run_md:
    input:
        model="results/{material}/{model}/n{n}/seed{seed}/model/model.json",
        structure=structure_input,
    output:
        snapshots="results/{material}/{model}/n{n}/seed{seed}/md/snapshots.extxyz",
        log="results/{material}/{model}/n{n}/seed{seed}/md/md_log.csv",
        supercell="results/{material}/{model}/n{n}/seed{seed}/md/supercell.extxyz",
        info="results/{material}/{model}/n{n}/seed{seed}/md/md_run.json",
    log:
        "results/{material}/logs/run_md/{model}/n{n}/seed{seed}.log",
    benchmark:
        "results/{material}/benchmarks/run_md/{model}/n{n}/seed{seed}.tsv"
    conda:
        model_env
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
        md=canonical_params(trajectory_params(config["md"])),
    script:
        "../scripts/run_md.py"


rule md_diagnostics:
    input:
        snapshots="results/{material}/{model}/n{n}/seed{seed}/md/snapshots.extxyz",
        reference="results/{material}/{model}/n{n}/seed{seed}/md/supercell.extxyz",
        log="results/{material}/{model}/n{n}/seed{seed}/md/md_log.csv",
    output:
        rdf="results/{material}/{model}/n{n}/seed{seed}/md/rdf.csv",
        sigma2="results/{material}/{model}/n{n}/seed{seed}/md/sigma2.csv",
        diagnostics="results/{material}/{model}/n{n}/seed{seed}/md/diagnostics.json",
    log:
        "results/{material}/logs/md_diagnostics/{model}/n{n}/seed{seed}.log",
    benchmark:
        "results/{material}/benchmarks/md_diagnostics/{model}/n{n}/seed{seed}.tsv"
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


EXAFS_RUN_TARGETS.extend(
    [
        "results/{material}/{model}/n{n}/seed{seed}/md/diagnostics.json",
        "results/{material}/{model}/n{n}/seed{seed}/md/sigma2.csv",
        "results/{material}/{model}/n{n}/seed{seed}/md/rdf.csv",
    ]
)

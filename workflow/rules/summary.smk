# The per-material summary table joining both arms.


rule summary:
    input:
        unpack(get_summary_inputs),
    output:
        f"{MATERIAL_DIR}/summary.csv",
    log:
        f"{MATERIAL_DIR}/logs/summary.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        runs=lambda wc: get_runs(wc.material),
    script:
        "../scripts/summary.py"


rule convergence:
    input:
        unpack(get_convergence_inputs),
    output:
        f"{MATERIAL_DIR}/convergence.json",
    log:
        f"{MATERIAL_DIR}/logs/convergence.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/convergence.tsv"
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        convergence=canonical_params(config["convergence"]),
        production_ps=get_production_ps,
    script:
        "../scripts/convergence.py"

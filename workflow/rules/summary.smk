# The per-material summary table joining both arms.


rule summary:
    input:
        unpack(summary_inputs),
    output:
        "results/{material}/summary.csv",
    log:
        "results/{material}/logs/summary.log",
    benchmark:
        "results/{material}/benchmarks/summary.tsv"
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        runs=lambda wc: runs(wc.material),
    script:
        "../scripts/summary.py"


rule convergence:
    input:
        unpack(convergence_inputs),
    output:
        "results/{material}/convergence.json",
    log:
        "results/{material}/logs/convergence.log",
    benchmark:
        "results/{material}/benchmarks/convergence.tsv"
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        convergence=canonical_params(config["convergence"]),
        production_ps=production_ps(),
    script:
        "../scripts/convergence.py"


MATERIAL_TARGETS.append("results/{material}/summary.csv")
MATERIAL_TARGETS.append("results/{material}/convergence.json")

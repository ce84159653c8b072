# Data: download (or copy from $DUALBENCH_DATA_MIRROR) or copy a local file; SHA-256 checked.


rule fetch_data:
    input:
        local_source,
    output:
        "resources/{material}/{role}/{filename}",
    log:
        "results/{material}/logs/fetch_data/{role}/{filename}.log",
    benchmark:
        "results/{material}/benchmarks/fetch_data/{role}/{filename}.tsv"
    localrule: True
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        source=lambda wc: canonical_params(source_of(wc.material, wc.role)),
    script:
        "../scripts/fetch_data.py"

# Data: download (or copy from $DUALBENCH_DATA_MIRROR) or copy a local file; SHA-256 checked.


rule fetch_data:
    input:
        get_local_source,
    output:
        "resources/{material}/{role}/{filename}",
    log:
        f"{MATERIAL_DIR}/logs/fetch_data/{{role}}/{{filename}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/fetch_data/{{role}}/{{filename}}.tsv"
    localrule: True
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        source=lambda wc: canonical_params(get_source(wc.material, wc.role)),
    script:
        "../scripts/fetch_data.py"

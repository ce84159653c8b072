# DFT labels for a material whose config has `dft.label` instead of a file of frames:
# configurations sampled from vanilla-model MD (plus rattled cells), each labelled with
# DFT (GPAW by default) in a job of its own, then joined into a training pool and a
# held-out test set that prepare_frames reads like any DFT data.


rule sample_configs:
    input:
        structure=get_structure_input,
    output:
        configs=f"{MATERIAL_DIR}/dft/label/round{{round}}/configs.extxyz",
        info=f"{MATERIAL_DIR}/dft/label/round{{round}}/configs.json",
    log:
        f"{MATERIAL_DIR}/logs/sample_configs/round{{round}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/sample_configs/round{{round}}.tsv"
    wildcard_constraints:
        round=r"\d+",
    conda:
        get_sampling_env
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        label=get_round_sampling,
        model=lambda wc: get_sampling_model(wc.material),
        structure=lambda wc: canonical_params(
            config["materials"][wc.material]["structure"]
        ),
        temperature=lambda wc: config["materials"][wc.material]["temperature_K"],
    script:
        "../scripts/sample_configs.py"


rule label_frames:
    input:
        configs=f"{MATERIAL_DIR}/dft/label/round{{round}}/configs.extxyz",
        reuse=get_label_reuse,
    output:
        frames=f"{MATERIAL_DIR}/dft/label/round{{round}}/chunk{{chunk}}.extxyz",
        info=f"{MATERIAL_DIR}/dft/label/round{{round}}/chunk{{chunk}}.json",
    log:
        f"{MATERIAL_DIR}/logs/label_frames/round{{round}}/chunk{{chunk}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/label_frames/round{{round}}/chunk{{chunk}}.tsv"
    wildcard_constraints:
        round=r"\d+",
        chunk=r"\d+",
    conda:
        "../../envs/dft.yaml"
    # One core per frame: two single-core frames side by side beat one on two cores.
    threads: 1
    resources:
        mem_mb=6000,
        runtime=lambda wc: 60 * get_label_settings(wc.material).chunk_size,
    params:
        label=get_label_theory,
    script:
        "../scripts/label_frames.py"


rule gather_labels:
    input:
        get_label_chunks,
    output:
        train=f"{MATERIAL_DIR}/dft/labelled/train.extxyz",
        test=f"{MATERIAL_DIR}/dft/labelled/test.extxyz",
        info=f"{MATERIAL_DIR}/dft/labelled/labels.json",
    log:
        f"{MATERIAL_DIR}/logs/gather_labels.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/gather_labels.tsv"
    localrule: True
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/gather_labels.py"

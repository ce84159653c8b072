# DFT labels for a material whose config has `dft.label` instead of a file of frames:
# configurations sampled from vanilla-model MD (plus rattled cells), each labelled with
# DFT (GPAW by default) in a job of its own, then joined into a training pool and a
# held-out test set that prepare_frames reads like any DFT data.


rule sample_configs:
    input:
        structure=structure_input,
    output:
        configs="results/{material}/dft/label/round{round}/configs.extxyz",
        info="results/{material}/dft/label/round{round}/configs.json",
    log:
        "results/{material}/logs/sample_configs/round{round}.log",
    benchmark:
        "results/{material}/benchmarks/sample_configs/round{round}.tsv"
    wildcard_constraints:
        round=r"\d+",
    conda:
        sampling_env
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        label=round_sampling,
        model=lambda wc: sampling_model(wc.material),
        structure=lambda wc: canonical_params(
            config["materials"][wc.material]["structure"]
        ),
        temperature=lambda wc: config["materials"][wc.material]["temperature_K"],
    script:
        "../scripts/sample_configs.py"


rule label_frames:
    input:
        configs="results/{material}/dft/label/round{round}/configs.extxyz",
        reuse=label_reuse,
    output:
        frames="results/{material}/dft/label/round{round}/chunk{chunk}.extxyz",
        info="results/{material}/dft/label/round{round}/chunk{chunk}.json",
    log:
        "results/{material}/logs/label_frames/round{round}/chunk{chunk}.log",
    benchmark:
        "results/{material}/benchmarks/label_frames/round{round}/chunk{chunk}.tsv"
    wildcard_constraints:
        round=r"\d+",
        chunk=r"\d+",
    conda:
        "../../envs/dft.yaml"
    # One core per frame: two single-core frames side by side beat one on two cores.
    threads: 1
    resources:
        mem_mb=6000,
        runtime=lambda wc: 60 * label_settings(wc.material).chunk_size,
    params:
        label=label_theory,
    script:
        "../scripts/label_frames.py"


rule gather_labels:
    input:
        label_chunks,
    output:
        train="results/{material}/dft/labelled/train.extxyz",
        test="results/{material}/dft/labelled/test.extxyz",
        info="results/{material}/dft/labelled/labels.json",
    log:
        "results/{material}/logs/gather_labels.log",
    benchmark:
        "results/{material}/benchmarks/gather_labels.tsv"
    localrule: True
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/gather_labels.py"

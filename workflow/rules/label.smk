# DFT labels for a material whose config has `dft.label` instead of a file of frames:
# configurations sampled from vanilla-model MD (plus rattled cells), each labelled with
# DFT (GPAW by default) in a job of its own, then joined into a training pool and a
# held-out test set that prepare_frames reads like any DFT data.

from dualbench.label import LabelSettings

LABEL = "results/{material}/dft/label"


def label_settings(material):
    return LabelSettings.from_config(config["materials"][material]["dft"]["label"])


def sampling_model(material):
    """The pretrained model (`kind:weights`) whose MD is sampled."""
    name = (
        config["materials"][material]["dft"]["label"]["sampling"]["model"] or MODELS[0]
    )
    spec = config["models"][name]
    return f"{spec['kind']}:{spec['weights']}"


rule sample_configs:
    input:
        structure=structure_input,
    output:
        configs=LABEL + "/configs.extxyz",
        info=LABEL + "/configs.json",
    log:
        LOGS + "/sample_configs.log",
    benchmark:
        BENCH + "/sample_configs.tsv"
    conda:
        "../../envs/ml.yaml"
    threads: 2
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        label=lambda wc: config["materials"][wc.material]["dft"]["label"],
        model=lambda wc: sampling_model(wc.material),
        structure=lambda wc: config["materials"][wc.material]["structure"],
        temperature=lambda wc: config["materials"][wc.material]["temperature_K"],
    script:
        "../scripts/sample_configs.py"


rule label_frames:
    input:
        configs=LABEL + "/configs.extxyz",
    output:
        frames=LABEL + "/chunk{chunk}.extxyz",
        info=LABEL + "/chunk{chunk}.json",
    log:
        LOGS + "/label_frames/chunk{chunk}.log",
    benchmark:
        BENCH + "/label_frames/chunk{chunk}.tsv"
    wildcard_constraints:
        chunk=r"\d+",
    conda:
        "../../envs/dft.yaml"
    # One core per frame: two single-core frames side by side beat one on two cores.
    threads: 1
    resources:
        mem_mb=6000,
        runtime=lambda wc: 60 * label_settings(wc.material).chunk_size,
    params:
        label=lambda wc: config["materials"][wc.material]["dft"]["label"],
    script:
        "../scripts/label_frames.py"


def label_chunks(wildcards):
    n_chunks = label_settings(wildcards.material).n_chunks
    return [
        f"{LABEL}/chunk{i}.extxyz".format(material=wildcards.material)
        for i in range(n_chunks)
    ]


rule gather_labels:
    input:
        label_chunks,
    output:
        train="results/{material}/dft/labelled/train.extxyz",
        test="results/{material}/dft/labelled/test.extxyz",
        info="results/{material}/dft/labelled/labels.json",
    log:
        LOGS + "/gather_labels.log",
    benchmark:
        BENCH + "/gather_labels.tsv"
    localrule: True
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/gather_labels.py"

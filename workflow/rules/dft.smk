# DFT arm: frames -> held-out test set -> N-frame fine-tuning -> metrics on the test set.


rule prepare_frames:
    input:
        train=lambda wc: get_dft_frames(wc.material, "train"),
        test=lambda wc: get_dft_frames(wc.material, "test"),
        # a structure file gives the elements the frames may hold
        structure=get_structure_input,
    output:
        pool=f"{MATERIAL_DIR}/dft/train_pool.extxyz",
        test=f"{MATERIAL_DIR}/dft/test.extxyz",
        info=f"{MATERIAL_DIR}/dft/frames.json",
    log:
        f"{MATERIAL_DIR}/logs/prepare_frames.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/prepare_frames.tsv"
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dft=lambda wc: canonical_params(config["materials"][wc.material]["dft"]),
        elements=lambda wc: get_material_elements(wc.material),
    script:
        "../scripts/prepare_frames.py"


rule vanilla_model:
    output:
        f"{MATERIAL_DIR}/{{model}}/n0/seed{{seed}}/model/model.json",
    log:
        f"{MATERIAL_DIR}/logs/vanilla_model/{{model}}_seed{{seed}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/vanilla_model/{{model}}_seed{{seed}}.tsv"
    localrule: True
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        model=lambda wc: get_model_params(wc.model),
    script:
        "../scripts/vanilla_model.py"


rule fine_tune:
    input:
        pool=f"{MATERIAL_DIR}/dft/train_pool.extxyz",
    output:
        model=f"{RUN_DIR}/model/model.json",
        checkpoint=f"{RUN_DIR}/model/checkpoint.pth.tar",
        curve=f"{RUN_DIR}/model/training_curve.csv",
        frames=f"{RUN_DIR}/model/frame_ids.json",
    log:
        f"{MATERIAL_DIR}/logs/fine_tune/{{model}}_n{{n}}_seed{{seed}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/fine_tune/{{model}}_n{{n}}_seed{{seed}}.tsv"
    wildcard_constraints:
        n=r"[1-9]\d*",
    conda:
        get_model_env
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda wc: 30 + 2 * int(wc.n),
    params:
        base=lambda wc: get_model_params(wc.model),
        settings=lambda wc: get_finetune_params(wc.model, int(wc.n)),
    script:
        "../scripts/fine_tune.py"


rule dft_metrics:
    input:
        model=f"{RUN_DIR}/model/model.json",
        test=f"{MATERIAL_DIR}/dft/test.extxyz",
    output:
        metrics=f"{RUN_DIR}/dft_metrics.json",
        parity=f"{RUN_DIR}/force_parity.csv",
    log:
        f"{MATERIAL_DIR}/logs/dft_metrics/{{model}}_n{{n}}_seed{{seed}}.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/dft_metrics/{{model}}_n{{n}}_seed{{seed}}.tsv"
    # Score a run as soon as its input exists, before starting more MD or training.
    priority: 10
    conda:
        get_model_env
    # One thread, as every scoring job (rule snapshot_chi says why).
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/dft_metrics.py"

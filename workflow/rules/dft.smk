# DFT arm: frames -> held-out test set -> N-frame fine-tuning -> metrics on the test set.


rule prepare_frames:
    input:
        train=lambda wc: dft_frames(wc.material, "train"),
        test=lambda wc: dft_frames(wc.material, "test"),
        # a structure file gives the elements the frames may hold
        structure=structure_input,
    output:
        pool="results/{material}/dft/train_pool.extxyz",
        test="results/{material}/dft/test.extxyz",
        info="results/{material}/dft/frames.json",
    log:
        "results/{material}/logs/prepare_frames.log",
    benchmark:
        "results/{material}/benchmarks/prepare_frames.tsv"
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        dft=lambda wc: canonical_params(config["materials"][wc.material]["dft"]),
        elements=lambda wc: material_elements(wc.material),
    script:
        "../scripts/prepare_frames.py"


rule vanilla_model:
    output:
        "results/{material}/{model}/n0/seed{seed}/model/model.json",
    log:
        "results/{material}/logs/vanilla_model/{model}_seed{seed}.log",
    benchmark:
        "results/{material}/benchmarks/vanilla_model/{model}_seed{seed}.tsv"
    localrule: True
    conda:
        "../../envs/ml.yaml"
    resources:
        mem_mb=500,
        runtime=5,
    params:
        model=lambda wc: model_params(wc.model),
    script:
        "../scripts/vanilla_model.py"


rule fine_tune:
    input:
        pool="results/{material}/dft/train_pool.extxyz",
    output:
        model="results/{material}/{model}/n{n}/seed{seed}/model/model.json",
        checkpoint="results/{material}/{model}/n{n}/seed{seed}/model/checkpoint.pth.tar",
        curve="results/{material}/{model}/n{n}/seed{seed}/model/training_curve.csv",
        frames="results/{material}/{model}/n{n}/seed{seed}/model/frame_ids.json",
    log:
        "results/{material}/logs/fine_tune/{model}_n{n}_seed{seed}.log",
    benchmark:
        "results/{material}/benchmarks/fine_tune/{model}_n{n}_seed{seed}.tsv"
    wildcard_constraints:
        n=r"[1-9]\d*",
    conda:
        model_env
    threads: 2
    resources:
        mem_mb=8000,
        runtime=lambda wc: 30 + 2 * int(wc.n),
    params:
        base=lambda wc: model_params(wc.model),
        settings=lambda wc: finetune_params(int(wc.n)),
    script:
        "../scripts/fine_tune.py"


rule dft_metrics:
    input:
        model="results/{material}/{model}/n{n}/seed{seed}/model/model.json",
        test="results/{material}/dft/test.extxyz",
    output:
        metrics="results/{material}/{model}/n{n}/seed{seed}/dft_metrics.json",
        parity="results/{material}/{model}/n{n}/seed{seed}/force_parity.csv",
    log:
        "results/{material}/logs/dft_metrics/{model}_n{n}_seed{seed}.log",
    benchmark:
        "results/{material}/benchmarks/dft_metrics/{model}_n{n}_seed{seed}.tsv"
    conda:
        model_env
    threads: 2
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/dft_metrics.py"


RUN_TARGETS.append("results/{material}/{model}/n{n}/seed{seed}/dft_metrics.json")

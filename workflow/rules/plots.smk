# Figures: Fig. 2 and Fig. 3 of the paper per material, and diagnostics.
# Every figure is PNG + PDF with its numbers as CSV; PNGs go into `snakemake --report`.


rule plot_fig2:
    input:
        unpack(get_fig2_inputs),
    output:
        png=report(
            f"{MATERIAL_DIR}/figures/fig2.png",
            caption="../report/fig2.rst",
            category="{material}",
        ),
        pdf=f"{MATERIAL_DIR}/figures/fig2.pdf",
        csv=f"{MATERIAL_DIR}/figures/fig2.csv",
    log:
        f"{MATERIAL_DIR}/logs/plot_fig2.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/plot_fig2.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        labels=[run_label(model, n) for model, n in get_fig2_runs()],
        runs=[
            {"model": model, "n": n, "seed": get_plot_seed()}
            for model, n in get_fig2_runs()
        ],
        ft=get_ft,
        kweight=lambda wc: get_ft(wc)["kweight"],
        k_window=lambda wc: [get_ft(wc)["kmin"], get_ft(wc)["kmax"]],
        title=get_fig2_title,
    script:
        "../scripts/plot_fig2.py"


rule plot_fig3:
    input:
        summary=f"{MATERIAL_DIR}/summary.csv",
        convergence=f"{MATERIAL_DIR}/convergence.json",
    output:
        png=report(
            f"{MATERIAL_DIR}/figures/fig3.png",
            caption="../report/fig3.rst",
            category="{material}",
        ),
        pdf=f"{MATERIAL_DIR}/figures/fig3.pdf",
        csv=f"{MATERIAL_DIR}/figures/fig3.csv",
    log:
        f"{MATERIAL_DIR}/logs/plot_fig3.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/plot_fig3.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_fig3.py"


rule plot_parity:
    input:
        get_parity_inputs,
    output:
        png=report(
            f"{MATERIAL_DIR}/figures/force_parity.png",
            caption="../report/force_parity.rst",
            category="{material}",
        ),
        pdf=f"{MATERIAL_DIR}/figures/force_parity.pdf",
        csv=f"{MATERIAL_DIR}/figures/force_parity.csv",
    log:
        f"{MATERIAL_DIR}/logs/plot_parity.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/plot_parity.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        labels=[run_label(model, n) for model, n in get_fig2_runs()],
        runs=[
            {"model": model, "n": n, "seed": get_plot_seed()}
            for model, n in get_fig2_runs()
        ],
        ft=get_ft,
    script:
        "../scripts/plot_parity.py"


rule plot_convergence:
    input:
        lambda wc: get_run_files(
            f"{RUN_DIR}/exafs/convergence.csv",
            wc.material,
            "exafs",
        ),
    output:
        png=report(
            f"{MATERIAL_DIR}/figures/exafs_convergence.png",
            caption="../report/exafs_convergence.rst",
            category="{material}",
        ),
        pdf=f"{MATERIAL_DIR}/figures/exafs_convergence.pdf",
        csv=f"{MATERIAL_DIR}/figures/exafs_convergence.csv",
    log:
        f"{MATERIAL_DIR}/logs/plot_convergence.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/plot_convergence.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: get_runs(wc.material, "exafs"),
    script:
        "../scripts/plot_convergence.py"


rule plot_sigma2:
    input:
        unpack(get_sigma2_inputs),
    output:
        png=report(
            f"{MATERIAL_DIR}/figures/sigma2.png",
            caption="../report/sigma2.rst",
            category="{material}",
        ),
        pdf=f"{MATERIAL_DIR}/figures/sigma2.pdf",
        csv=f"{MATERIAL_DIR}/figures/sigma2.csv",
    log:
        f"{MATERIAL_DIR}/logs/plot_sigma2.log",
    benchmark:
        f"{MATERIAL_DIR}/benchmarks/plot_sigma2.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: get_runs(wc.material, "exafs"),
    script:
        "../scripts/plot_sigma2.py"

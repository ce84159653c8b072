# Figures: Fig. 2 and Fig. 3 of the paper per material, and diagnostics.
# Every figure is PNG + PDF with its numbers as CSV; PNGs go into `snakemake --report`.


rule plot_fig2:
    input:
        unpack(fig2_inputs),
    output:
        png=report(
            "results/{material}/figures/fig2.png",
            caption="../report/fig2.rst",
            category="{material}",
        ),
        pdf="results/{material}/figures/fig2.pdf",
        csv="results/{material}/figures/fig2.csv",
    log:
        "results/{material}/logs/plot_fig2.log",
    benchmark:
        "results/{material}/benchmarks/plot_fig2.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        labels=[run_label(model, n) for model, n in fig2_runs()],
        runs=[{"model": model, "n": n, "seed": plot_seed()} for model, n in fig2_runs()],
        ft=canonical_params(config["ft"]),
        kweight=config["ft"]["kweight"],
        k_window=[config["ft"]["kmin"], config["ft"]["kmax"]],
        title=fig2_title,
    script:
        "../scripts/plot_fig2.py"


rule plot_fig3:
    input:
        summary="results/{material}/summary.csv",
        convergence="results/{material}/convergence.json",
    output:
        png=report(
            "results/{material}/figures/fig3.png",
            caption="../report/fig3.rst",
            category="{material}",
        ),
        pdf="results/{material}/figures/fig3.pdf",
        csv="results/{material}/figures/fig3.csv",
    log:
        "results/{material}/logs/plot_fig3.log",
    benchmark:
        "results/{material}/benchmarks/plot_fig3.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_fig3.py"


rule plot_parity:
    input:
        parity_inputs,
    output:
        png=report(
            "results/{material}/figures/force_parity.png",
            caption="../report/force_parity.rst",
            category="{material}",
        ),
        pdf="results/{material}/figures/force_parity.pdf",
        csv="results/{material}/figures/force_parity.csv",
    log:
        "results/{material}/logs/plot_parity.log",
    benchmark:
        "results/{material}/benchmarks/plot_parity.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        labels=[run_label(model, n) for model, n in fig2_runs()],
        runs=[{"model": model, "n": n, "seed": plot_seed()} for model, n in fig2_runs()],
        ft=canonical_params(config["ft"]),
    script:
        "../scripts/plot_parity.py"


rule plot_convergence:
    input:
        lambda wc: expand_runs(
            "results/{material}/{model}/n{n}/seed{seed}/exafs/convergence.csv",
            wc.material,
            "exafs",
        ),
    output:
        png=report(
            "results/{material}/figures/exafs_convergence.png",
            caption="../report/exafs_convergence.rst",
            category="{material}",
        ),
        pdf="results/{material}/figures/exafs_convergence.pdf",
        csv="results/{material}/figures/exafs_convergence.csv",
    log:
        "results/{material}/logs/plot_convergence.log",
    benchmark:
        "results/{material}/benchmarks/plot_convergence.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material, "exafs"),
    script:
        "../scripts/plot_convergence.py"


rule plot_sigma2:
    input:
        unpack(sigma2_inputs),
    output:
        png=report(
            "results/{material}/figures/sigma2.png",
            caption="../report/sigma2.rst",
            category="{material}",
        ),
        pdf="results/{material}/figures/sigma2.pdf",
        csv="results/{material}/figures/sigma2.csv",
    log:
        "results/{material}/logs/plot_sigma2.log",
    benchmark:
        "results/{material}/benchmarks/plot_sigma2.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material, "exafs"),
    script:
        "../scripts/plot_sigma2.py"


MATERIAL_TARGETS.extend(
    f"results/{{material}}/figures/{name}.png"
    for name in ("fig2", "fig3", "force_parity", "exafs_convergence", "sigma2")
)

# Figures: Fig. 2 and Fig. 3 of the paper per material, and diagnostics.
# Every figure is PNG + PDF with its numbers as CSV; PNGs go into `snakemake --report`.

from dualbench.plots import run_label

FIGURES = "results/{material}/figures"


def plot_seed():
    return SEEDS[0] if config["plots"]["seed"] is None else config["plots"]["seed"]


def fig2_runs():
    """(model, n) pairs of Fig. 2: vanilla and the configured (default: largest) N."""
    tuned = config["plots"]["fig2_n_frames"] or [n for n in N_FRAMES[-1:] if n > 0]
    ns = ([0] if 0 in N_FRAMES else []) + sorted(tuned)
    return [(model, n) for model in MODELS for n in ns]


def run_path(pattern, material, model, n):
    return pattern.format(material=material, model=model, n=n, seed=plot_seed())


def fig2_inputs(wildcards):
    inputs = {
        "sims": [
            run_path(RUN + "/exafs/chi_k.csv", wildcards.material, model, n)
            for model, n in fig2_runs()
        ]
    }
    if has_experiment(wildcards.material):
        inputs["experiment"] = EXPERIMENT + "/chi_k.csv"
        inputs["comparison"] = "results/{material}/exafs/comparison.csv".format(
            material=wildcards.material
        )
    return inputs


rule plot_fig2:
    input:
        unpack(fig2_inputs),
    output:
        png=report(
            FIGURES + "/fig2.png",
            caption="../report/fig2.rst",
            category="{material}",
        ),
        pdf=FIGURES + "/fig2.pdf",
        csv=FIGURES + "/fig2.csv",
    log:
        LOGS + "/plot_fig2.log",
    benchmark:
        BENCH + "/plot_fig2.tsv"
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
        title=lambda wc: f"{wc.material}: {config['materials'][wc.material]['absorber']} "
        f"{config['materials'][wc.material]['edge']} edge, "
        f"{config['materials'][wc.material]['temperature_K']:g} K",
    script:
        "../scripts/plot_fig2.py"


rule plot_fig3:
    input:
        "results/{material}/summary.csv",
    output:
        png=report(
            FIGURES + "/fig3.png",
            caption="../report/fig3.rst",
            category="{material}",
        ),
        pdf=FIGURES + "/fig3.pdf",
        csv=FIGURES + "/fig3.csv",
    log:
        LOGS + "/plot_fig3.log",
    benchmark:
        BENCH + "/plot_fig3.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../scripts/plot_fig3.py"


rule plot_parity:
    input:
        lambda wc: [
            run_path(RUN + "/force_parity.csv", wc.material, model, n)
            for model, n in fig2_runs()
        ],
    output:
        png=report(
            FIGURES + "/force_parity.png",
            caption="../report/force_parity.rst",
            category="{material}",
        ),
        pdf=FIGURES + "/force_parity.pdf",
        csv=FIGURES + "/force_parity.csv",
    log:
        LOGS + "/plot_parity.log",
    benchmark:
        BENCH + "/plot_parity.tsv"
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
        lambda wc: expand_runs(RUN + "/exafs/convergence.csv", wc.material),
    output:
        png=report(
            FIGURES + "/exafs_convergence.png",
            caption="../report/exafs_convergence.rst",
            category="{material}",
        ),
        pdf=FIGURES + "/exafs_convergence.pdf",
        csv=FIGURES + "/exafs_convergence.csv",
    log:
        LOGS + "/plot_convergence.log",
    benchmark:
        BENCH + "/plot_convergence.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material),
    script:
        "../scripts/plot_convergence.py"


def sigma2_inputs(wildcards):
    """Every run's MD sigma^2 and, with an experiment, its shell fit."""
    inputs = {"sigma2": expand_runs(RUN + "/md/sigma2.csv", wildcards.material)}
    if has_experiment(wildcards.material):
        inputs["fit"] = EXPERIMENT.format(material=wildcards.material) + "/fit.json"
    return inputs


rule plot_sigma2:
    input:
        unpack(sigma2_inputs),
    output:
        png=report(
            FIGURES + "/sigma2.png",
            caption="../report/sigma2.rst",
            category="{material}",
        ),
        pdf=FIGURES + "/sigma2.pdf",
        csv=FIGURES + "/sigma2.csv",
    log:
        LOGS + "/plot_sigma2.log",
    benchmark:
        BENCH + "/plot_sigma2.tsv"
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        runs=lambda wc: runs(wc.material),
    script:
        "../scripts/plot_sigma2.py"


MATERIAL_TARGETS.extend(
    FIGURES + f"/{name}.png"
    for name in ("fig2", "fig3", "force_parity", "exafs_convergence", "sigma2")
)

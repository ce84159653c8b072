# The leaderboard of the whole study: every model at N = 0 and at the largest N, against
# the experiment's sigma^2 and spectrum and against DFT, ranked; a table, heat maps and a
# self-contained static page (results/suite/index.html).


rule leaderboard:
    input:
        unpack(get_leaderboard_inputs),
    output:
        csv=LEADERBOARD_CSV,
        png=report(
            f"{LEADERBOARD_FIGURE}.png",
            caption="../report/leaderboard.rst",
            category="leaderboard",
        ),
        pdf=f"{LEADERBOARD_FIGURE}.pdf",
        figure_csv=f"{LEADERBOARD_FIGURE}.csv",
        page=LEADERBOARD_PAGE,
    log:
        f"{LEADERBOARD_DIR}/logs/leaderboard.log",
    benchmark:
        f"{LEADERBOARD_DIR}/benchmarks/leaderboard.tsv"
    localrule: True
    conda:
        "../../envs/plots.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        folders=[MATERIAL_DIR.format(material=material) for material in MATERIALS],
        temperatures=get_temperatures(),
        conditions=get_experiment_conditions(),
    script:
        "../scripts/leaderboard.py"

# Input and param functions of data.smk, label.smk and dft.smk: the DFT frames, the
# labelling and the fine-tuning settings of a material.

from dualbench.label import LabelSettings
from dualbench.training import model_section, scheduled


def get_dft_frames(material, split):
    """The DFT frames file of a material's `train` or `test` split: the configured file, the
    labelled frames when the config has `dft.label`, or [] (no test file: held out)."""
    if config["materials"][material]["dft"]["label"] is not None:
        return f"{MATERIAL_DIR.format(material=material)}/dft/labelled/{split}.extxyz"
    role = f"dft_{split}"
    return (
        get_data_file(material, role) if role in get_material_sources(material) else []
    )


def get_label_settings(material):
    """The `dft.label` settings of a material (schema defaults filled)."""
    return LabelSettings.from_config(config["materials"][material]["dft"]["label"])


def get_sampling_model_name(material):
    """The model (a key of `models`) whose vanilla MD is sampled for labelling."""
    return (
        config["materials"][material]["dft"]["label"]["sampling"]["model"] or MODELS[0]
    )


def get_sampling_model(material):
    """The spec params of the pretrained model whose MD is sampled."""
    return get_model_params(get_sampling_model_name(material))


def get_sampling_env(wildcards):
    """The conda env of a material's sampling model."""
    return MODEL_ENVS[
        config["models"][get_sampling_model_name(wildcards.material)]["kind"]
    ]


def get_finetune_params(model, n):
    """The finetune settings of a model at N = n (its own `finetune` keys over the
    study's, schedule applied; device left to the config, so that moving to a GPU does not
    rerun fine-tuning)."""
    own = config["models"][model].get("finetune")
    settings = scheduled(model_section(config["finetune"], own), n)
    return canonical_params({k: v for k, v in settings.items() if k != "device"})


def get_label_chunks(wildcards):
    """The labelled chunk files of a material with `dft.label`: per sampling round, one
    per labelling job."""
    settings = get_label_settings(wildcards.material)
    return [
        f"{MATERIAL_DIR.format(material=wildcards.material)}/dft/label/round{r}/chunk{i}.extxyz"
        for r in range(len(settings.sampling_rounds()))
        for i in range(settings.n_chunks(r))
    ]


def get_round_sampling(wildcards):
    """What round `wildcards.round` samples: the shared sampling settings, the labelled
    cell and that round's counts (so that adding a round does not rerun earlier ones).
    """
    label = config["materials"][wildcards.material]["dft"]["label"]
    sampling = {k: v for k, v in label["sampling"].items() if k != "rounds"}
    rounds = get_label_settings(wildcards.material).sampling_rounds()
    r = int(wildcards.round)
    if r >= len(rounds):
        raise ValueError(f"material {wildcards.material} has no sampling round {r}")
    sampling.update(vars(rounds[r]))
    return canonical_params({"supercell": label["supercell"], "sampling": sampling})


def get_label_theory(wildcards):
    """The labelling settings but the sampling (the level of theory, chunking and reuse)."""
    label = config["materials"][wildcards.material]["dft"]["label"]
    return canonical_params({k: v for k, v in label.items() if k != "sampling"})


def get_label_reuse(wildcards):
    """The labelled files a material's labelling reuses frames from."""
    return list(get_label_settings(wildcards.material).reuse)

"""The DFT calculators of the labels: GPAW (embedded), VASP and Quantum ESPRESSO, each
with the D3 dispersion."""

from __future__ import annotations

from pathlib import Path

from ase import units

from dualbench.label.settings import LabelSettings


def _d3(settings: LabelSettings):
    from dftd3.ase import DFTD3

    damping = {"d3bj": "d3bj", "d3zero": "d3zero"}[settings.dispersion]
    return DFTD3(method=settings.xc, damping=damping)


def make_dft_calculator(settings: LabelSettings, directory: str | Path, label: str = "dft"):
    """The ASE calculator of ``settings`` (DFT plus dispersion), working in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    options = dict(settings.calculator_options)
    kpts = [int(k) for k in settings.kpts]
    if settings.calculator == "gpaw":
        from gpaw import GPAW, PW, FermiDirac

        params = {
            # dedecut: the finite-basis (Pulay) stress correction, from dE/dE_cut
            "mode": PW(settings.cutoff_eV, dedecut="estimate"),
            "xc": settings.xc,
            "kpts": {"size": kpts, "gamma": True},
            "occupations": FermiDirac(settings.smearing_eV),
            "txt": str(directory / f"{label}.txt"),
        }
        params.update(options)
        dft = GPAW(**params)
        if settings.dispersion == "none":
            return dft
        from ase.calculators.mixing import SumCalculator

        return SumCalculator([dft, _d3(settings)])
    if settings.calculator == "vasp":
        from ase.calculators.vasp import Vasp

        params = {
            "xc": settings.xc,
            "encut": settings.cutoff_eV,
            "kpts": kpts,
            "gamma": True,
            "ismear": -1,
            "sigma": settings.smearing_eV,
            "isym": 0,
            "lwave": False,
            "lcharg": False,
            "directory": str(directory / label),
        }
        if settings.dispersion != "none":
            params["ivdw"] = {"d3bj": 12, "d3zero": 11}[settings.dispersion]
        params.update(options)
        return Vasp(**params)
    # Quantum ESPRESSO: energies in Ry in its input.
    from ase.calculators.espresso import Espresso, EspressoProfile

    system = {
        "ecutwfc": settings.cutoff_eV / units.Ry,
        "occupations": "smearing",
        "smearing": "fd",
        "degauss": settings.smearing_eV / units.Ry,
        "input_dft": settings.xc.lower(),
    }
    if settings.dispersion != "none":
        version = {"d3bj": 4, "d3zero": 3}[settings.dispersion]
        system.update(vdw_corr="dft-d3", dftd3_version=version)
    input_data = {"control": {"tstress": True, "tprnfor": True}, "system": system}
    for section, values in options.pop("input_data", {}).items():
        input_data.setdefault(section, {}).update(values)
    profile = EspressoProfile(
        command=options.pop("command", "pw.x"), pseudo_dir=options.pop("pseudo_dir", ".")
    )
    return Espresso(
        input_data=input_data,
        kpts=kpts,
        pseudopotentials=options.pop("pseudopotentials", {}),
        profile=profile,
        directory=str(directory / label),
        **options,
    )

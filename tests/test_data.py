"""DFT frame readers, units and signs, refusals, the test split and the nested sweep subsets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pytest
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator

from dualbench.data import (
    FrameError,
    ase_stress_to_gpa_matrix,
    load_frames,
    prepare_frames,
    read_frames,
    select_frames,
    split_test,
    subset_indices,
    vasp_kbar_to_ase_stress,
    write_frames,
)

# One physical state written by hand in each format: 2-atom bcc W, forces in eV/Å,
# VASP stress in kBar (xx, yy, zz, xy, yz, zx), compression positive.
CELL = 3.17
FORCES = np.array([[0.10, -0.20, 0.30], [-0.10, 0.20, -0.30]])
ENERGY = -25.5
VASP_KBAR = np.array([50.0, 60.0, 70.0, 1.0, 2.0, 3.0])
FRAC = np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]])


@dataclass(frozen=True)
class State:
    """A 2-atom cubic W cell (edge ``cell`` Å, fractional ``frac``) with its labels: energy
    eV, forces eV/Å, stress in VASP's kBar, order (xx, yy, zz, xy, yz, zx), compression
    positive."""

    cell: float = CELL
    frac: np.ndarray = field(default_factory=lambda: FRAC)
    energy: float = ENERGY
    forces: np.ndarray = field(default_factory=lambda: FORCES)
    vasp_kbar: np.ndarray = field(default_factory=lambda: VASP_KBAR)

    def atoms(self) -> Atoms:
        return Atoms("W2", scaled_positions=self.frac, cell=[self.cell] * 3, pbc=True)


HAND = State()


def _vasp_matrix(s):
    xx, yy, zz, xy, yz, zx = s
    return np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]])


def test_stress_conversion_units_sign_order():
    ase_stress = vasp_kbar_to_ase_stress(VASP_KBAR)
    # 10 kBar = 1 GPa; VASP compression-positive becomes ASE tension-positive;
    # order (xx, yy, zz, xy, yz, zx) becomes (xx, yy, zz, yz, xz, xy).
    expected_gpa = -np.array([5.0, 6.0, 7.0, 0.2, 0.3, 0.1])
    np.testing.assert_allclose(ase_stress / units.GPa, expected_gpa)
    np.testing.assert_allclose(vasp_kbar_to_ase_stress(_vasp_matrix(VASP_KBAR)), ase_stress)
    matrix = ase_stress_to_gpa_matrix(ase_stress)
    np.testing.assert_allclose(matrix, -0.1 * _vasp_matrix(VASP_KBAR))


def test_snap_hot_frames_have_thermal_pressure(snap_dir):
    """At fixed volume, 2000-4000 K AIMD frames are compressed: ASE stress trace < 0."""
    frames = read_frames(snap_dir / "W_Test.json", "pymatgen-json", ["W"])
    assert len(frames) == 30 and all(len(a) == 54 for a in frames)
    pressures = [-np.mean(a.get_stress()[:3]) / units.GPa for a in frames]
    assert np.median(pressures) > 1.0  # GPa, positive pressure
    raw = json.loads((snap_dir / "W_Test.json").read_text())[0]
    np.testing.assert_allclose(frames[0].get_forces(), raw["outputs"]["forces"])
    assert frames[0].get_potential_energy() == pytest.approx(raw["outputs"]["energy"])
    assert frames[0].info["frame_id"] == "W_Test.json:0"


def _record(forces=FORCES, energy=ENERGY, stress=VASP_KBAR, species=("W", "W"), cell=CELL,
            frac=FRAC):
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(cell), list(species), np.asarray(frac).tolist())
    outputs = {"energy": energy, "stress": None if stress is None else list(stress)}
    if forces is not None:
        outputs["forces"] = np.asarray(forces).tolist()
    return {"structure": structure.as_dict(), "outputs": outputs}


def _vasprun(path, state=HAND):
    def varray(name, rows):
        body = "\n".join("    <v> " + " ".join(f"{x:.8f}" for x in r) + " </v>" for r in rows)
        return f'   <varray name="{name}" >\n{body}\n   </varray>'

    basis = varray("basis", np.eye(3) * state.cell)
    positions = varray("positions", state.frac)
    energy = state.energy
    path.write_text(f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<modeling>
 <kpoints>
  <varray name="kpointlist" >
   <v>       0.00000000       0.00000000       0.00000000 </v>
  </varray>
  <varray name="weights" >
   <v>       1.00000000 </v>
  </varray>
 </kpoints>
 <atominfo>
  <atoms>       2 </atoms>
  <types>       1 </types>
  <array name="atoms" >
   <set>
    <rc><c>W </c><c>   1</c></rc>
    <rc><c>W </c><c>   1</c></rc>
   </set>
  </array>
 </atominfo>
 <structure name="initialpos" >
  <crystal>
{basis}
  </crystal>
{positions}
 </structure>
 <calculation>
  <scstep>
   <energy>
    <i name="e_fr_energy">   {energy:.8f} </i>
    <i name="e_wo_entrp">   {energy:.8f} </i>
    <i name="e_0_energy">   {energy:.8f} </i>
   </energy>
  </scstep>
  <structure>
   <crystal>
{basis}
   </crystal>
{positions}
  </structure>
{varray("forces", state.forces)}
{varray("stress", _vasp_matrix(state.vasp_kbar))}
  <energy>
   <i name="e_fr_energy">   {energy:.8f} </i>
   <i name="e_wo_entrp">   {energy:.8f} </i>
   <i name="e_0_energy">   {energy:.8f} </i>
  </energy>
 </calculation>
 <structure name="finalpos" >
  <crystal>
{basis}
  </crystal>
{positions}
 </structure>
</modeling>
""")


def _outcar(path, state=HAND):
    pos = state.frac * state.cell
    energy = state.energy
    rows = "\n".join(
        f" {p[0]:12.5f} {p[1]:12.5f} {p[2]:12.5f} {f[0]:13.6f} {f[1]:13.6f} {f[2]:13.6f}"
        for p, f in zip(pos, state.forces, strict=True)
    )
    xx, yy, zz, xy, yz, zx = state.vasp_kbar
    lattice = "\n".join(
        f"    {r[0]:12.9f} {r[1]:12.9f} {r[2]:12.9f}    0.0 0.0 0.0" for r in np.eye(3) * state.cell
    )
    path.write_text(f""" vasp.6.3.0 (hand-written test OUTCAR)
 POTCAR:    PAW_PBE W_pv 06Sep2000
 POTCAR:    PAW_PBE W_pv 06Sep2000
   ISPIN  =      1    spin polarized calculation?
   ions per type =               2
----------------------------- Iteration      1(   1)  -----------------------------

  FORCE on cell =-STRESS in cart. coord.  units (eV):
  Direction    XX          YY          ZZ          XY          YZ          ZX
  --------------------------------------------------------------------------------------
  in kB   {xx:10.5f} {yy:10.5f} {zz:10.5f} {xy:10.5f} {yz:10.5f} {zx:10.5f}
  external pressure =       60.00 kB  Pullay stress =        0.00 kB

 VOLUME and BASIS-vectors are now :
 -----------------------------------------------------------------------------
  energy-cutoff  :      520.00
  volume of cell :       31.86
      direct lattice vectors                 reciprocal lattice vectors
{lattice}

 POSITION                                       TOTAL-FORCE (eV/Angst)
 -----------------------------------------------------------------------------------
{rows}
 -----------------------------------------------------------------------------------

  FREE ENERGIE OF THE ION-ELECTRON SYSTEM (eV)
  ---------------------------------------------------
  free  energy   TOTEN  =       {energy:.8f} eV

  energy  without entropy=      {energy:.8f}  energy(sigma->0) =      {energy:.8f}
""")


def _ase_labelled(state: State) -> Atoms:
    """The state with an ASE calculator: ASE's stress is eV/Å^3, tension positive, Voigt
    (xx, yy, zz, yz, xz, xy); converted from VASP's kBar here by hand."""
    xx, yy, zz, xy, yz, zx = state.vasp_kbar
    atoms = state.atoms()
    stress = -0.1 * units.GPa * np.array([xx, yy, zz, yz, zx, xy])
    atoms.calc = SinglePointCalculator(atoms, energy=state.energy, forces=state.forces,
                                       stress=stress)
    return atoms


def _extxyz(path, state=HAND):
    atoms = _ase_labelled(state)
    atoms.info["frame_id"] = "written:0"
    write_frames(path, [atoms])


def _ase_db(path, state=HAND):
    import ase.db

    with ase.db.connect(str(path)) as db:
        db.write(_ase_labelled(state))


def _pymatgen_json(path, state=HAND):
    record = _record(forces=state.forces, energy=state.energy, stress=state.vasp_kbar,
                     cell=state.cell, frac=state.frac)
    path.write_text(json.dumps([record]))


WRITERS = {
    "pymatgen-json": ("frames.json", _pymatgen_json),
    "vasprun": ("vasprun.xml", _vasprun),
    "outcar": ("OUTCAR", _outcar),
    "extxyz": ("frames.extxyz", _extxyz),
    "ase-db": ("frames.db", _ase_db),
}


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_every_reader_gives_the_same_internal_form(fmt, tmp_path):
    name, writer = WRITERS[fmt]
    path = tmp_path / name
    writer(path)
    for given in (fmt, None):  # from the config, and guessed from the file name
        (atoms,) = read_frames(path, given, ["W"])
        assert atoms.get_chemical_symbols() == ["W", "W"]
        np.testing.assert_allclose(atoms.cell.lengths(), [CELL] * 3)
        assert atoms.get_potential_energy() == pytest.approx(ENERGY)
        np.testing.assert_allclose(atoms.get_forces(), FORCES, atol=1e-6)
        np.testing.assert_allclose(
            atoms.get_stress() / units.GPa, -np.array([5.0, 6.0, 7.0, 0.2, 0.3, 0.1]), atol=1e-6
        )


@pytest.fixture(scope="module")
def chgnet_state(vanilla_chgnet) -> State:
    """A compressed, distorted 2-atom W cell labelled by CHGNet's own ASE calculator: its
    stress (ASE: eV/Å^3, tension positive) written in VASP's kBar by hand."""
    from chgnet.model.dynamics import CHGNetCalculator

    state = State(cell=3.08, frac=np.array([[0.0, 0.0, 0.0], [0.53, 0.47, 0.52]]))
    atoms = state.atoms()
    atoms.calc = CHGNetCalculator(vanilla_chgnet, use_device="cpu", stress_weight=units.GPa)
    xx, yy, zz, yz, xz, xy = atoms.get_stress(voigt=True) / units.GPa
    return State(
        cell=state.cell,
        frac=state.frac,
        energy=float(atoms.get_potential_energy()),
        forces=np.array(atoms.get_forces(), dtype=float),
        vasp_kbar=-10.0 * np.array([xx, yy, zz, xy, yz, xz], dtype=float),
    )


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_chgnet_scores_its_own_labels_with_no_error(fmt, chgnet_state, vanilla_chgnet, tmp_path):
    """Frames CHGNet labelled itself, through every reader: energy, force and stress errors
    about zero.  A flipped stress sign or order anywhere would give errors of ~20 GPa."""
    from dualbench.metrics import dft_metrics
    from dualbench.models.chgnet import predictions

    # Compressed 3 % below the lattice parameter: VASP's (compression-positive) pressure
    # is tens of kBar, and the displaced atom makes forces and shear stresses.
    assert np.mean(chgnet_state.vasp_kbar[:3]) > 100.0
    assert np.abs(chgnet_state.vasp_kbar[3:]).max() > 3.0
    assert np.abs(chgnet_state.forces).max() > 0.3
    name, writer = WRITERS[fmt]
    writer(tmp_path / name, chgnet_state)
    frames = read_frames(tmp_path / name, fmt, ["W"])
    metrics, _ = dft_metrics(frames, predictions(vanilla_chgnet, frames))
    assert metrics["stress_mae_GPa"] == pytest.approx(0.0, abs=2e-3)
    assert metrics["force_mae_eV_per_A"] == pytest.approx(0.0, abs=2e-5)
    assert metrics["energy_mae_eV_per_atom"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["force_slope"] == pytest.approx(1.0, abs=1e-4)


REFUSALS = [
    ("no forces", dict(forces=None), "frame 1: has no forces"),
    ("NaN forces", dict(forces=[[np.nan, 0, 0], [0, 0, 0]]), "frame 1: forces contain NaN"),
    ("wrong length", dict(forces=[[0, 0, 0]]), r"frame 1: forces have shape \(1, 3\)"),
    ("foreign species", dict(species=("W", "Mo")), "frame 1: holds Mo, not among"),
    ("NaN energy", dict(energy=float("nan")), "frame 1: has no finite energy"),
]


@pytest.mark.parametrize(("case", "change", "message"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refusals_name_file_and_frame(case, change, message, tmp_path):
    path = tmp_path / "bad.json"
    records = [_record(), _record(**change)]
    path.write_text(json.dumps(records).replace("NaN", "NaN"))
    with pytest.raises(FrameError, match=f"bad.json: {message}"):
        read_frames(path, "pymatgen-json", ["W"])


def test_unreadable_and_empty_files(tmp_path):
    with pytest.raises(FrameError, match="no such file"):
        read_frames(tmp_path / "missing.json", "pymatgen-json")
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    with pytest.raises(FrameError, match="empty.json: holds no frames"):
        read_frames(empty, "pymatgen-json")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(FrameError, match="broken.json: not valid JSON"):
        read_frames(broken, "pymatgen-json")
    unknown = tmp_path / "frames.dat"
    unknown.write_text("")
    with pytest.raises(FrameError, match="frames.dat: cannot tell the frame format"):
        read_frames(unknown)


def test_extxyz_roundtrip_keeps_everything(w_test_frames, tmp_path):
    write_frames(tmp_path / "t.extxyz", w_test_frames[:3])
    back = load_frames(tmp_path / "t.extxyz")
    for a, b in zip(w_test_frames[:3], back, strict=True):
        np.testing.assert_allclose(a.get_forces(), b.get_forces())
        np.testing.assert_allclose(a.get_stress(), b.get_stress())
        assert a.get_potential_energy() == b.get_potential_energy()
        assert a.info["frame_id"] == b.info["frame_id"]


def test_subsets_are_nested_and_seeded():
    sizes = [0, 1, 2, 5, 10, 20, 50, 100]
    for seed in (0, 1, 7):
        subsets = [subset_indices(200, n, seed) for n in sizes]
        for small, large in zip(subsets, subsets[1:], strict=False):
            assert large[: len(small)] == small
        assert len(set(subsets[-1])) == 100
    assert subset_indices(200, 10, 0) != subset_indices(200, 10, 1)
    assert subset_indices(200, 0, 0) == []
    with pytest.raises(FrameError, match="N = 201 frames asked for, the training pool has 200"):
        subset_indices(200, 201, 0)


def test_select_frames_records_ids(w_test_frames):
    chosen, record = select_frames(w_test_frames, 3, seed=4)
    assert record["indices"] == subset_indices(30, 3, 4)
    assert record["frame_ids"] == [a.info["frame_id"] for a in chosen]


def test_held_out_block_is_never_drawn(w_test_frames):
    pool, test = split_test(w_test_frames, 0.2)
    assert len(test) == 6 and len(pool) == 24
    test_ids = {a.info["frame_id"] for a in test}
    for seed in range(5):
        _, record = select_frames(pool, len(pool), seed)
        assert not test_ids & set(record["frame_ids"])


def test_prepare_frames_checks_pool_size(snap_dir, tmp_path):
    info = prepare_frames(
        snap_dir / "W_Test.json", "pymatgen-json", None, None, ["W"], 0.2, 24,
        tmp_path / "pool.extxyz", tmp_path / "test.extxyz",
    )
    assert {k: info[k] for k in ("n_train_pool", "n_test", "train_has_stress",
                                 "test_has_stress")} == {
        "n_train_pool": 24, "n_test": 6, "train_has_stress": True, "test_has_stress": True}
    assert info["pool_conditions"] == {} and info["selection"]["train"]["select"] is None
    with pytest.raises(FrameError, match="sweep.n_frames asks for 25"):
        prepare_frames(
            snap_dir / "W_Test.json", "pymatgen-json", None, None, ["W"], 0.2, 25,
            tmp_path / "pool2.extxyz", tmp_path / "test2.extxyz",
        )
    assert not (tmp_path / "pool2.extxyz").exists()

"""How one FEFF path's chi(k) changes with its geometry: the model the ``fast`` engine uses.

A path of the ideal crystal with half length reff, genfmt's ``base(k)`` (chi per unit
degeneracy = Im base, see :func:`path_arrays_on_grid`) and complex momentum p(k), is
carried to an instance of half length R = reff + dR and pairwise atom distances
d = d_ref + dd as

    chi(k) = Im[ base(k) (reff / R)^2 exp(2 i p(k) dR) (1 + sum_j g_j(k) dd_j) ].

The first two factors are larch's ``deltar`` (path length in the 1/R^2 spreading and in
the photoelectron's phase and mean free path).  The gradients ``g_j`` carry what genfmt
adds beyond them, from genfmt on copies of the path with one distance changed by one and
two :data:`GEOMETRY_STEP_A` (second-order differences): the curved-wave change of the
scattering amplitudes with
distance and, for multiple scattering, with the scattering angles (a focusing path
whose middle atom leaves the line loses amplitude).  The coordinates are the distances
between the path's distinct atoms (absorber included), which fix its shape; a path of
more than :data:`MAX_MODEL_ATOMS` distinct atoms (NLEG 5 and beyond) keeps only its
length as coordinate.  A distance that cannot change alone in one direction (the long
side of a straight path cannot grow) takes one-sided differences.  The model is linear:
second-order terms (a path's curvature in each distance, and the cross terms between
distances, which matter as much) are left out, so its error grows as the fourth power of
the relative displacements: R-factors against FEFF of 6e-5, 5e-4 and 3e-3 for 0.03, 0.05
and 0.07 Å of independent Gaussian displacement per component in bcc W (NLEG 4, RPATH
5.6 Å); real MD, whose neighbours move together, sits near the middle one.

The model is evaluated on the coarse grid :data:`K_COARSE`; the instance sums are smooth
in k and go to :data:`~dualbench.exafs.settings.K_GRID` by a cubic spline.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from dualbench.exafs.settings import K_GRID, K_MAX

#: Grid (1/Å) the per-instance factors are evaluated on.
K_COARSE = np.round(np.arange(0.0, K_MAX + 1e-9, 0.2), 6)
#: Change (Å) of one distance in the copies genfmt runs on for the gradients.
GEOMETRY_STEP_A = 0.005
#: Steps of each coordinate's copies, in units of GEOMETRY_STEP_A.
STEPS = (1.0, -1.0, 2.0, -2.0)
#: Most distinct atoms (absorber included) whose distances are the model's coordinates.
MAX_MODEL_ATOMS = 4
#: Most coordinates of one path: all pairs of MAX_MODEL_ATOMS atoms.
MAX_COORDS = MAX_MODEL_ATOMS * (MAX_MODEL_ATOMS - 1) // 2
#: Coordinate pair meaning "half path length" (paths with more distinct atoms).
LENGTH = (-1, -1)


def path_arrays_on_grid(
    arrays: Mapping[str, np.ndarray], k: np.ndarray = K_GRID
) -> tuple[np.ndarray, np.ndarray]:
    """``ff2x``'s interpolation of genfmt's path arrays onto ``k`` (1/Å).

    Returns (base, p): ``base`` (n_paths, n_k) complex with the path's chi(k) per unit
    degeneracy = Im(base) = amp exp(-2 reff / lam) / (k reff^2) x sin(2 k reff + pha),
    amplitude and phase interpolated linearly on FEFF's grid as ff2x does; ``p``
    (n_paths, n_k) the complex momentum rep + i / lam (1/Å).
    """
    base = np.zeros((len(arrays["reff"]), len(k)), dtype=complex)
    momentum = np.zeros_like(base)
    for i, reff in enumerate(arrays["reff"]):
        kf, amp, pha = arrays["k"][i], arrays["amp"][i], arrays["pha"][i]
        rep, lam = arrays["rep"][i], arrays["lam"][i]
        with np.errstate(divide="ignore", invalid="ignore"):
            amplitude = amp * np.exp(-2.0 * reff / lam) / (np.abs(kf) * reff**2)
        amplitude = np.where(np.isfinite(amplitude), amplitude, 0.0)
        a = np.interp(k, kf, amplitude)
        phase = np.interp(k, kf, np.unwrap(pha))
        base[i] = a * np.exp(1j * (2.0 * k * reff + phase))
        momentum[i] = np.interp(k, kf, rep) + 1j / np.interp(k, kf, lam)
    return base, momentum


def half_length(vertices: np.ndarray) -> np.ndarray:
    """Half the length of closed paths through ``vertices`` (..., legs, 3), Å."""
    legs = np.roll(vertices, -1, axis=-2) - vertices
    return 0.5 * np.linalg.norm(legs, axis=-1).sum(axis=-1)


def distinct_vertices(vertices: np.ndarray) -> tuple[list[int], list[int]]:
    """(the first vertex of each distinct atom of a path, the distinct atom of each
    vertex): a path may revisit an atom."""
    first: list[int] = []
    owner: list[int] = []
    for v in vertices:
        same = [a for a, f in enumerate(first) if np.linalg.norm(v - vertices[f]) <= 1e-4]
        if not same:
            first.append(len(owner))
            same = [len(first) - 1]
        owner.append(same[0])
    return first, owner


def path_coordinates(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model's coordinates of a path: (pairs (n_c, 2) of vertex indices, values Å).

    The distances between all pairs of the path's distinct atoms, or, beyond
    :data:`MAX_MODEL_ATOMS` of them, the half path length alone (pair :data:`LENGTH`).
    """
    first, _ = distinct_vertices(vertices)
    if len(first) > MAX_MODEL_ATOMS:
        return np.array([LENGTH]), np.array([float(half_length(vertices))])
    pairs = np.array([(a, b) for i, a in enumerate(first) for b in first[i + 1 :]])
    values = np.linalg.norm(vertices[pairs[:, 0]] - vertices[pairs[:, 1]], axis=1)
    return pairs, values


def embed(distances: np.ndarray) -> np.ndarray | None:
    """Points (n, 3), the first at the origin, with the given distance matrix; None when
    no such points exist in 3D (classical multidimensional scaling)."""
    d2 = np.asarray(distances, dtype=float) ** 2
    gram = 0.5 * (d2[0][:, None] + d2[0][None, :] - d2)[1:, 1:]
    values, vectors = np.linalg.eigh(gram)
    scale = max(1.0, float(np.abs(values).max()))
    if values.min() < -1e-9 * scale:
        return None
    coords = vectors * np.sqrt(np.clip(values, 0.0, None))
    points = np.zeros((len(d2), 3))
    points[1:, : coords.shape[1]] = coords[:, -3:] if coords.shape[1] > 3 else coords
    return points


def changed_geometry(
    vertices: np.ndarray, pairs: np.ndarray, j: int, step_A: float
) -> np.ndarray | None:
    """The path's vertices with coordinate ``j`` changed by ``step_A`` and the others
    kept (absorber at the origin), or None when no such geometry exists."""
    if tuple(pairs[j]) == LENGTH:
        r = float(half_length(vertices))
        return vertices * (r + step_A) / r
    first, owner = distinct_vertices(vertices)
    where = {v: i for i, v in enumerate(first)}
    atoms = vertices[first]
    dist = np.linalg.norm(atoms[:, None] - atoms[None, :], axis=-1)
    a, b = where[int(pairs[j][0])], where[int(pairs[j][1])]
    dist[a, b] = dist[b, a] = dist[a, b] + step_A
    points = embed(dist)
    if points is None:
        return None
    return points[owner]


def gradient_geometries(vertices: np.ndarray) -> tuple[np.ndarray, list[np.ndarray | None]]:
    """The coordinate pairs of a path and its changed copies: for each coordinate, one
    per :data:`STEPS` (None where impossible)."""
    pairs, _ = path_coordinates(vertices)
    copies: list[np.ndarray | None] = []
    for j in range(len(pairs)):
        for step in STEPS:
            copies.append(changed_geometry(vertices, pairs, j, step * GEOMETRY_STEP_A))
    return pairs, copies


def gradients(
    base: np.ndarray,
    momentum: np.ndarray,
    reff: float,
    changed: list[tuple[np.ndarray, float] | None],
    step_A: float = GEOMETRY_STEP_A,
) -> np.ndarray:
    """g_j(k) (n_c, n_k) of one path on its grid: ``changed`` holds, for each coordinate,
    (base, half length) of the copies at :data:`STEPS`, or None.

    The residual f = base_changed / deltar model - 1 (f(0) = 0) is differenced centrally
    when the +-1 steps exist, one-sidedly to second order (steps 1 and 2 of one sign) when
    one side does not, and set to 0 when neither side has two steps.  (Linear rather than
    exponential in dd: a weak multiple-scattering path near a node of its amplitude has
    steep logarithmic gradients that an exponential would blow up.)
    """
    n_c = len(changed) // len(STEPS)
    slope = np.zeros((n_c, len(base)), dtype=complex)
    for j in range(n_c):
        f = {}
        for step, item in zip(STEPS, changed[len(STEPS) * j : len(STEPS) * (j + 1)], strict=True):
            if item is not None:
                b, r = item
                model = base * (reff / r) ** 2 * np.exp(2j * momentum * (r - reff))
                with np.errstate(divide="ignore", invalid="ignore"):
                    f[step] = b / model - 1.0
        if 1.0 in f and -1.0 in f:
            g = (f[1.0] - f[-1.0]) / (2 * step_A)
        elif 1.0 in f and 2.0 in f:
            g = (4 * f[1.0] - f[2.0]) / (2 * step_A)
        elif -1.0 in f and -2.0 in f:
            g = -(4 * f[-1.0] - f[-2.0]) / (2 * step_A)
        else:
            continue
        slope[j] = np.where(np.isfinite(g), g, 0.0)
    return slope


def spline_matrix(coarse: np.ndarray = K_COARSE, fine: np.ndarray = K_GRID) -> np.ndarray:
    """(len(fine), len(coarse)) matrix of cubic-spline interpolation from coarse to fine."""
    from scipy.interpolate import CubicSpline

    return CubicSpline(coarse, np.eye(len(coarse)), axis=0)(fine)

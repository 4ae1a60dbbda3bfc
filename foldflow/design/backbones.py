"""Protein backbones for design: ideal helical bundles from Crick's coiled-coil parameters, or read from files.

A :class:`Backbone` holds N, CA, C and O coordinates per residue. :func:`helical_bundle` places each helix's
CA atoms with Crick's equations as Grigoryan and DeGrado parameterise them (supercoil radius ``R0``, pitch
``P``, supercoil phase per helix, helix radius 2.26 Å, 3.5 residues per turn in the supercoiled frame, rise
1.51 Å), alternating up and down so that short loops close the chain; N, C and O are placed from the CA
trace with the local geometry of an ideal α-helix (built from its bond lengths, angles and φ/ψ = -57.8/-47).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HELIX_RADIUS = 2.26  # Å, CA atoms around the helix axis
HELIX_RISE = 1.51  # Å per residue along the axis
HELIX_FREQUENCY = 4 * math.pi / 7  # rad per residue: 3.5 residues per turn in the supercoiled frame
CA_CA = 3.80  # Å between consecutive CA atoms (loops are spaced by it)
BACKBONE_ATOMS = ("N", "CA", "C", "O")


@dataclass
class Backbone:
    """One design's backbone: ``coords`` [residues, 4 (N, CA, C, O), 3] in Å."""

    name: str
    coords: np.ndarray
    source: str  # "helical_bundle" or the file it was read from
    params: dict = field(default_factory=dict)  # the generator's parameters (JSON-able)
    helix_mask: np.ndarray | None = None  # True where the generator placed a helix residue
    pdb_text: str | None = None  # a file's chain as PDB text, residue names kept (ProteinMPNN's recovery)

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def ca(self) -> np.ndarray:
        return self.coords[:, 1]

    @classmethod
    def from_pdb(cls, text: str, name: str, source: str = "pdb") -> Backbone:
        """The N, CA, C, O of every residue of the first chain in PDB text (such as :meth:`to_pdb` writes);
        residues missing one of them are left out."""
        residues: dict[tuple[str, str], dict[str, list[float]]] = {}
        chain = None
        for line in text.splitlines():
            if not line.startswith("ATOM"):
                continue
            chain = chain or line[21]
            if line[21] != chain:
                break
            atom = line[12:16].strip()
            if atom in BACKBONE_ATOMS:
                residues.setdefault((line[22:27], line[17:20]), {})[atom] = [
                    float(line[30:38]), float(line[38:46]), float(line[46:54])]
        coords = [[atoms[a] for a in BACKBONE_ATOMS] for atoms in residues.values() if len(atoms) == 4]
        return cls(name, np.array(coords, dtype=float), source)

    def to_pdb(self, residue: str = "GLY") -> str:
        """PDB text of the backbone (one chain A, ``residue`` names), as ProteinMPNN and TM-align read it."""
        lines, serial = [], 1
        for index, atoms in enumerate(self.coords):
            for name, (x, y, z) in zip(BACKBONE_ATOMS, atoms):
                lines.append(f"ATOM  {serial:5d}  {name:<3s} {residue} A{index + 1:4d}    "
                             f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {name[0]}")
                serial += 1
        return "\n".join([*lines, "TER", "END"]) + "\n"


@dataclass(frozen=True)
class BundleParameters:
    """An up-down bundle of ``helices`` helices of ``helix_length`` residues around one supercoil axis."""

    helices: int = 4
    helix_length: int = 18
    supercoil_radius: float = 7.0  # R0, Å: helix axes from the bundle axis
    supercoil_pitch: float = 180.0  # P, Å per supercoil turn (left-handed); large = straighter helices
    supercoil_phase: float = 0.0  # rad, rotation of the whole bundle about its axis
    helix_phase: float = 0.0  # φ1, rad: which face of each helix points to the core

    def as_dict(self) -> dict:
        return {"helices": self.helices, "helix_length": self.helix_length,
                "supercoil_radius": self.supercoil_radius, "supercoil_pitch": self.supercoil_pitch,
                "supercoil_phase": self.supercoil_phase, "helix_phase": self.helix_phase}


def supercoil(params: BundleParameters) -> tuple[float, float]:
    """(pitch angle α, supercoil frequency ω0 in rad per residue, negative: left-handed)."""
    alpha = math.atan(2 * math.pi * params.supercoil_radius / params.supercoil_pitch)
    return alpha, -HELIX_RISE * math.sin(alpha) / params.supercoil_radius


def crick_ca(length: int, params: BundleParameters, helix_index: int, start: float = 0.0) -> np.ndarray:
    """CA atoms of one helix of the bundle (Crick's equations), residues ``start`` .. ``start + length - 1``
    (``start`` may be negative or past the end: virtual residues that give the end residues their frames)."""
    alpha, omega0 = supercoil(params)
    phase0 = params.supercoil_phase + 2 * math.pi * helix_index / params.helices
    t = np.arange(length, dtype=float) + start
    a = omega0 * t + phase0
    b = HELIX_FREQUENCY * t + params.helix_phase
    r0, r1 = params.supercoil_radius, HELIX_RADIUS
    x = r0 * np.cos(a) + r1 * np.cos(a) * np.cos(b) - r1 * math.cos(alpha) * np.sin(a) * np.sin(b)
    y = r0 * np.sin(a) + r1 * np.sin(a) * np.cos(b) + r1 * math.cos(alpha) * np.cos(a) * np.sin(b)
    z = HELIX_RISE * math.cos(alpha) * t + r1 * math.sin(alpha) * np.sin(b)  # the circle normal to the axis
    return np.stack([x, y, z], axis=1)


def _place(a: np.ndarray, b: np.ndarray, c: np.ndarray, bond: float, angle: float, torsion: float) -> np.ndarray:
    """NeRF: the atom after ``c`` at ``bond`` Å, angle b-c-x ``angle`` and torsion a-b-c-x ``torsion`` (deg)."""
    angle, torsion = math.radians(angle), math.radians(torsion)
    bc = (c - b) / np.linalg.norm(c - b)
    n = np.cross(b - a, bc)
    n /= np.linalg.norm(n)
    m = np.stack([bc, np.cross(n, bc), n], axis=1)
    d = np.array([-bond * math.cos(angle), bond * math.sin(angle) * math.cos(torsion),
                  bond * math.sin(angle) * math.sin(torsion)])
    return c + m @ d


def _ideal_helix(length: int) -> np.ndarray:
    """An ideal α-helix backbone [length, 4, 3] from bond geometry and φ/ψ/ω = -57.8/-47.0/180."""
    phi, psi, omega = -57.8, -47.0, 180.0
    n, ca = np.zeros(3), np.array([1.458, 0.0, 0.0])
    c = ca + 1.525 * np.array([-math.cos(math.radians(111.2)), math.sin(math.radians(111.2)), 0.0])
    atoms = [[n, ca, c]]
    for _ in range(length - 1):
        n_next = _place(atoms[-1][0], atoms[-1][1], atoms[-1][2], 1.329, 116.2, psi)
        ca_next = _place(atoms[-1][1], atoms[-1][2], n_next, 1.458, 121.7, omega)
        c_next = _place(atoms[-1][2], n_next, ca_next, 1.525, 111.2, phi)
        atoms.append([n_next, ca_next, c_next])
    coords = np.zeros((length, 4, 3))
    for i, (n, ca, c) in enumerate(atoms):
        coords[i, :3] = n, ca, c
        coords[i, 3] = _place(n, ca, c, 1.231, 120.5, psi + 180.0)
    return coords


def _frames(ca_prev: np.ndarray, ca: np.ndarray, ca_next: np.ndarray) -> np.ndarray:
    """Orthonormal frames [n, 3, 3] (rows: axes) of each CA from its neighbours."""
    e1 = ca_next - ca_prev
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = (ca - ca_prev) - (ca_next - ca)
    e2 -= (e2 * e1).sum(axis=1, keepdims=True) * e1
    e2 /= np.linalg.norm(e2, axis=1, keepdims=True)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=1)


def _helix_local_atoms() -> np.ndarray:
    """N, C, O of an ideal α-helix residue in its CA frame [3, 3]."""
    helix = _ideal_helix(5)
    ca = helix[:, 1]
    frame = _frames(ca[1:2], ca[2:3], ca[3:4])[0]
    return (helix[2, [0, 2, 3]] - ca[2]) @ frame.T


_LOCAL = _helix_local_atoms()


def backbone_from_ca(ca: np.ndarray) -> np.ndarray:
    """N, CA, C, O [n, 4, 3] for a CA trace [n + 2, 3] that carries one virtual CA at each end."""
    frames = _frames(ca[:-2], ca[1:-1], ca[2:])
    others = np.einsum("ka,nab->nkb", _LOCAL, frames) + ca[1:-1, None]
    return np.stack([others[:, 0], ca[1:-1], others[:, 1], others[:, 2]], axis=1)


MIN_LOOP = 3  # residues in a loop at least


def _arc(start: np.ndarray, end: np.ndarray, outward: np.ndarray, bulge: float) -> tuple[np.ndarray, np.ndarray]:
    """A quadratic Bezier curve from ``start`` to ``end`` bulging ``bulge`` Å ``outward``; (points, arc lengths)."""
    control = (start + end) / 2 + outward * bulge
    s = np.linspace(0.0, 1.0, 400)[:, None]
    curve = (1 - s) ** 2 * start + 2 * (1 - s) * s * control + s ** 2 * end
    return curve, np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])


def _loop(start: np.ndarray, end: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """CA atoms strictly between two helix ends, 3.8 Å apart on an arc bulging ``outward`` (at least
    :data:`MIN_LOOP` of them; the bulge is found by bisection so that the spacing comes out exact)."""
    steps = max(MIN_LOOP + 1, math.ceil(np.linalg.norm(end - start) / CA_CA) + 1)
    low, high = 0.0, 4.0 * steps * CA_CA
    for _ in range(60):
        bulge = (low + high) / 2
        low, high = (bulge, high) if _arc(start, end, outward, bulge)[1][-1] < steps * CA_CA else (low, bulge)
    curve, arc = _arc(start, end, outward, (low + high) / 2)
    marks = np.linspace(0.0, arc[-1], steps + 1)[1:-1]
    return np.stack([np.interp(marks, arc, curve[:, k]) for k in range(3)], axis=1)


def helical_bundle(params: BundleParameters, name: str = "bundle") -> Backbone:
    """An up-down helical bundle with its loops closed, as one chain."""
    length, pieces = params.helix_length, []
    alpha, omega0 = supercoil(params)
    top = HELIX_RISE * math.cos(alpha) * (length - 1)
    for j in range(params.helices):
        ca = crick_ca(length + 2, params, j, start=-1.0)  # with a virtual residue at each end
        if j % 2:  # antiparallel: turned 180° about its radial axis so it runs down from the top, then
            # about the bundle axis so that at every height it sits where the supercoil puts it
            phase = params.supercoil_phase + 2 * math.pi * j / params.helices
            axis = np.array([math.cos(phase), math.sin(phase), 0.0])
            ca = 2 * np.outer(ca @ axis, axis) - ca
            ca[:, 2] += top
            turn = omega0 * (length - 1)
            rotation = np.array([[math.cos(turn), -math.sin(turn), 0.0], [math.sin(turn), math.cos(turn), 0.0],
                                 [0.0, 0.0, 1.0]])
            ca = ca @ rotation.T
        pieces.append(ca)
    trace, mask = [pieces[0][:-1]], [np.ones(length, bool)]
    for j in range(1, params.helices):
        end, start = pieces[j - 1][-2], pieces[j][1]
        radial = (end + start) / 2
        radial[2] = 0.0
        up = np.array([0.0, 0.0, 1.0 if j % 2 else -1.0])
        outward = radial / (np.linalg.norm(radial) or 1.0) + up
        loop = _loop(end, start, outward / np.linalg.norm(outward))
        trace += [loop, pieces[j][1:-1]]
        mask += [np.zeros(len(loop), bool), np.ones(length, bool)]
    trace.append(pieces[-1][-1:])
    ca = np.concatenate(trace)
    return Backbone(name, backbone_from_ca(ca), "helical_bundle", params.as_dict(), np.concatenate(mask))


def read_backbone(path: Path, chain: str | None = None) -> Backbone:
    """The backbone of one chain (the first by default) of a PDB or mmCIF file; residues missing an atom of
    N, CA, C, O are left out."""
    import gemmi

    structure = gemmi.read_structure(str(path))
    model = structure[0]
    selected = next((c for c in model if chain is None or c.name == chain), None)
    if selected is None:
        raise ValueError(f"{path}: no chain {chain}")
    coords = []
    for residue in selected:
        atoms = {atom.name: atom.pos for atom in residue}
        if residue.het_flag != "H" and all(name in atoms for name in BACKBONE_ATOMS):
            coords.append([[atoms[n].x, atoms[n].y, atoms[n].z] for n in BACKBONE_ATOMS])
    if not coords:
        raise ValueError(f"{path}: chain {selected.name} has no complete backbone residue")
    for other in [c.name for c in model if c.name != selected.name]:
        model.remove_chain(other)
    structure.remove_ligands_and_waters()
    structure.setup_entities()
    return Backbone(f"{Path(path).stem}_{selected.name}", np.array(coords), str(path), {"chain": selected.name},
                    pdb_text=structure.make_pdb_string())

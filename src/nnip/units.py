"""Units. nnip works in ASE's units everywhere: eV, Å, fs, amu, e; stress in eV/Å^3.

Conversions happen only at input/output, through :func:`energy_factor`.
"""

from ase import units as _ase

__all__ = ["eV", "Angstrom", "fs", "kcal_mol", "kJ_mol", "Hartree", "Bohr", "kB",
           "COULOMB_CONSTANT", "energy_factor", "ENERGY_UNITS"]

eV = 1.0
Angstrom = 1.0
fs = _ase.fs
kcal_mol = _ase.kcal / _ase.mol  # eV per kcal/mol
kJ_mol = _ase.kJ / _ase.mol  # eV per kJ/mol
Hartree = _ase.Hartree  # eV per Hartree
Bohr = _ase.Bohr  # Å per Bohr
kB = _ase.kB  # eV/K
#: e^2 / (4 pi eps0) in eV·Å (about 14.3996).
COULOMB_CONSTANT = _ase.Hartree * _ase.Bohr

#: Energy units accepted at input, in eV per unit.
ENERGY_UNITS = {
    "eV": eV,
    "meV": 1e-3,
    "kcal/mol": kcal_mol,
    "kJ/mol": kJ_mol,
    "Hartree": Hartree,
    "Ha": Hartree,
}


def energy_factor(unit: str) -> float:
    """Return eV per ``unit`` (one of :data:`ENERGY_UNITS`), or raise ValueError naming the options."""
    try:
        return ENERGY_UNITS[unit]
    except KeyError:
        options = ", ".join(ENERGY_UNITS)
        raise ValueError(f"unknown energy unit {unit!r}; use one of {options}") from None

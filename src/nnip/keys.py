"""Names of every quantity that travels between modules, one constant each.

Format of each comment: shape | unit | meaning. N atoms, B structures, E edges.
"""

POSITIONS = "positions"  # (N, 3) | Å | Cartesian positions
ATOMIC_NUMBERS = "atomic_numbers"  # (N,) int64 | - | Z of each atom
CELL = "cell"  # (B, 3, 3) | Å | lattice vectors as rows, zeros if non-periodic
PBC = "pbc"  # (B, 3) bool | - | periodic along each lattice vector
EDGE_INDEX = "edge_index"  # (2, E) int64 | - | row 0 centre i, row 1 neighbour j
CELL_SHIFTS = "cell_shifts"  # (E, 3) int | - | integer image shift S; r_ij = r_j - r_i + S @ cell
STRUCTURE_INDEX = "structure_index"  # (N,) int64 | - | structure each atom belongs to
N_ATOMS = "n_atoms"  # (B,) int64 | - | atoms per structure

ENERGY = "energy"  # (B,) | eV | potential energy per structure
ATOMIC_ENERGIES = "atomic_energies"  # (N,) | eV | per-atom energies, summing to ENERGY
FORCES = "forces"  # (N, 3) | eV/Å | -dE/dr
STRESS = "stress"  # (B, 3, 3) | eV/Å^3 | (1/V) dE/d(strain), ASE sign; NaN where no volume
VIRIAL = "virial"  # (B, 3, 3) | eV | -dE/d(strain)
CHARGES = "charges"  # (N,) | e | atomic partial charges
DIPOLE = "dipole"  # (B, 3) | e Å | sum_i q_i r_i (NaN for periodic structures, where it is not defined)
TOTAL_CHARGE = "total_charge"  # (B,) | e | net charge of each structure

VAR_SUFFIX = "_var"  # ensembles: variance over members of <key>
MEMBERS_SUFFIX = "_members"  # ensembles: (M, ...) stacked member predictions

WEIGHT = "weight"  # (B,) | - | per-structure loss weight (atoms.info["weight"], default 1)

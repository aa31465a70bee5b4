"""Recreate src/nnip/data/bundled/ from ../shared/data (seeded choice; frames byte-identical,
except that mlearn's raw ``virial_stress_mlearn`` becomes ASE stress, see nnip.data.formats.mlearn_stress).

Usage: python tools/make_bundled_data.py SHARED_DATA_DIR
"""

import random
import shutil
import sys
from pathlib import Path


def frames(path: Path) -> list[str]:
    lines = path.read_text().splitlines(keepends=True)
    out, k = [], 0
    while k < len(lines) and lines[k].strip():
        n = int(lines[k])
        out.append("".join(lines[k:k + n + 2]))
        k += n + 2
    return out


def subset(src: Path, dst: Path, count: int | None, seed: int = 0) -> None:
    blocks = frames(src)
    if count is not None and count < len(blocks):
        chosen = sorted(random.Random(seed).sample(range(len(blocks)), count))
        blocks = [blocks[i] for i in chosen]
    dst.write_text("".join(blocks))
    print(f"{dst.name}: {len(blocks)} frames from {src}")


def mlearn_stress_labels(path: Path) -> None:
    """Rewrite an mlearn extxyz subset with ASE stress (eV/Å^3) in place of the raw virial."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write

    from nnip.data.formats import mlearn_stress

    frames = read(path, index=":")
    for atoms in frames:
        results = dict(atoms.calc.results)
        results["stress"] = mlearn_stress(atoms.info.pop("virial_stress_mlearn"))
        atoms.calc = SinglePointCalculator(atoms, **results)
    write(path, frames, format="extxyz")


def elastic_neighbours(shared: Path, dst: Path, max_strain: float = 0.03) -> None:
    """The mlearn "Elastic" cells within ``max_strain`` of the least-stressed one (the stress check's data)."""
    import numpy as np

    from nnip.data import read, write

    frames = [a for a in read(shared / "mlearn_si/training.json") if a.info.get("config_type") == "Elastic"]
    reference = min(frames, key=lambda a: np.abs(a.get_stress()).sum())
    kept = []
    for atoms in frames:
        deformation = np.linalg.solve(reference.cell.array, atoms.cell.array)
        if np.abs(0.5 * (deformation + deformation.T) - np.eye(3)).max() <= max_strain:
            kept.append(atoms)
    kept.sort(key=lambda a: a is not reference)  # the reference first
    write(dst, kept)
    print(f"{dst.name}: {len(kept)} frames from {shared / 'mlearn_si/training.json'}")


def main(shared: Path) -> None:
    out = Path(__file__).resolve().parents[1] / "src/nnip/data/bundled"
    out.mkdir(parents=True, exist_ok=True)
    subset(shared / "rmd17_ethanol/train.xyz", out / "ethanol_train.extxyz", 250)
    subset(shared / "rmd17_ethanol/test_MD.xyz", out / "ethanol_test.extxyz", 100)
    subset(shared / "rmd17_ethanol/isolated_atoms.xyz", out / "ethanol_isolated_atoms.extxyz", None)
    subset(shared / "mlearn_si/si_train.extxyz", out / "si_train.extxyz", 12)
    subset(shared / "mlearn_si/si_test.extxyz", out / "si_test.extxyz", 5)
    for name in ("si_train.extxyz", "si_test.extxyz"):
        mlearn_stress_labels(out / name)
    elastic_neighbours(shared, out / "si_elastic.extxyz")
    subset(shared / "3bpa/train_300K.xyz", out / "3bpa_train_300K.extxyz", 20)
    subset(shared / "3bpa/iso_atoms.xyz", out / "3bpa_isolated_atoms.extxyz", None)
    subset(shared / "ammonia_adversarial/ammonia_gen3_dft.extxyz", out / "ammonia_gen3.extxyz", None)
    for name in ("rmd17_ethanol/LICENSE.BOTNet-datasets", "mlearn_si/LICENSE.mlearn",
                 "ammonia_adversarial/LICENSE.Atomistic-Adversarial-Attacks"):
        shutil.copy(shared / name, out / Path(name).name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

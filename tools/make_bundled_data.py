"""Recreate src/nnip/data/bundled/ from ../shared/data (byte-identical frames, seeded choice).

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


def main(shared: Path) -> None:
    out = Path(__file__).resolve().parents[1] / "src/nnip/data/bundled"
    out.mkdir(parents=True, exist_ok=True)
    subset(shared / "rmd17_ethanol/train.xyz", out / "ethanol_train.extxyz", 250)
    subset(shared / "rmd17_ethanol/test_MD.xyz", out / "ethanol_test.extxyz", 100)
    subset(shared / "rmd17_ethanol/isolated_atoms.xyz", out / "ethanol_isolated_atoms.extxyz", None)
    subset(shared / "mlearn_si/si_train.extxyz", out / "si_train.extxyz", 12)
    subset(shared / "mlearn_si/si_test.extxyz", out / "si_test.extxyz", 5)
    subset(shared / "3bpa/train_300K.xyz", out / "3bpa_train_300K.extxyz", 20)
    subset(shared / "3bpa/iso_atoms.xyz", out / "3bpa_isolated_atoms.extxyz", None)
    subset(shared / "ammonia_adversarial/ammonia_gen3_dft.extxyz", out / "ammonia_gen3.extxyz", None)
    for name in ("rmd17_ethanol/LICENSE.BOTNet-datasets", "mlearn_si/LICENSE.mlearn",
                 "ammonia_adversarial/LICENSE.Atomistic-Adversarial-Attacks"):
        shutil.copy(shared / name, out / Path(name).name)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Make the bundled GFN2-xTB ethanol AIMD sets with nnip's own tools (oracle + MD).

Usage: OMP_NUM_THREADS=1 python tools/make_gfn2_ethanol.py [OUTPUT_DIR]

Langevin MD (0.5 fs, friction 0.01 1/fs, fixcm off) of ethanol with GFN2-xTB (tblite) at
300 K and 1000 K, from the first rMD17 bundled geometry, 500 fs of equilibration dropped,
then one frame every 20 steps (10 fs) for 200 frames each. Each frame holds GFN2 energy
and forces (eV, eV/Å) exactly as the MD computed them.
"""

import sys
from pathlib import Path

import nnip
from nnip.md.run import MDSettings, run_md
from nnip.oracles import get_oracle


def main(output: Path) -> None:
    start = nnip.read(nnip.data.bundled("ethanol_train.extxyz"), index=0)[0]
    for temperature in (300, 1000):
        settings = MDSettings(steps=1000 + 200 * 20, timestep=0.5, temperature=temperature, thermostat="langevin",
                              interval=20, seed=temperature)
        trajectory = output / f"ethanol_gfn2_{temperature}K.trajectory.extxyz"
        run_md(start, get_oracle("gfn2").factory(), settings, trajectory)
        frames = [a for a in nnip.read(trajectory) if a.info["step"] > 1000]
        for atoms in frames:
            atoms.info = {"temperature_K": temperature, "step": atoms.info["step"], "method": "GFN2-xTB (tblite)"}
        nnip.write(output / f"ethanol_gfn2_{temperature}K.extxyz", frames)
        trajectory.unlink()
        print(f"ethanol_gfn2_{temperature}K.extxyz: {len(frames)} frames")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "src/nnip/data/bundled")

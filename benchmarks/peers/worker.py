"""One package's timing worker, run inside that package's virtual environment by compare.py.

    python worker.py PACKAGE MODEL            (then JSON requests on stdin, one per line)

A request {"xyz": FILE, "dtype": "float32", "calls": K, "threads": T} builds the model (once
per dtype, untrained, seeded) and the inputs of the structure in FILE (once per structure:
the neighbour list is not part of the timing, as between rebuilds in MD), warms up with one
call and answers {"ms": mean milliseconds per energy+forces call over K calls, "peak_mb": ...}.
Forces come from each package's own autograd path, without create_graph.

A request with "train": {"batch": B, "batches": M} times training steps instead: the frames
of FILE (with energies and forces) are cut into M batches of B structures, each collated once
by the package's own batching (neighbour lists and collation are not timed, as the peers'
trainers cache them too), and each of K steps is forward in training mode (forces with
create_graph), loss = mean squared energy error + mean squared force component error, backward
and an Adam step; the answer's "ms" is per step. (NequIP's force output also differentiates
with respect to the cell, which from_ase keeps even for molecules: a small extra cost it always has.) Models are matched in compare.py (same
cutoff, widths, layers, radial basis); only this file imports the peers.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import torch
from ase.io import read

CUTOFF = 5.0


# -- nnip ---------------------------------------------------------------------------------------
def nnip_build(model: dict, dtype, elements):
    from nnip.potentials import build_potential

    spec = {"elements": elements, "terms": [{"name": model["name"], "config": model["config"]}]}
    potential = build_potential(spec).to(dtype).eval()
    return potential.compile_terms() if model.get("compile") else potential


def nnip_inputs(potential, atoms, dtype):
    from nnip.data.graph import AtomicGraph

    return AtomicGraph.from_arrays(atoms.positions, atoms.numbers, atoms.cell.array, atoms.pbc,
                                   potential.neighbor_request(), dtype=dtype)


def nnip_call(potential, graph):
    return potential(graph, compute_forces=True)["forces"]


def nnip_batch(potential, frames, dtype):
    from nnip.data.batching import collate

    return collate([nnip_inputs(potential, atoms, dtype) for atoms in frames])


def nnip_train_call(potential, graph):
    out = potential(graph, compute_forces=True, create_graph=True)
    return out["energy"], out["forces"]


# -- MACE (mace-torch 0.3.16) ---------------------------------------------------------------------
def mace_build(model: dict, dtype, elements):
    import numpy as np

    torch.serialization.add_safe_globals([slice])  # e3nn 0.4.4 torch.loads its own constants, which hold slices
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(dtype)
    config = model["config"]
    return modules.ScaleShiftMACE(
        r_max=CUTOFF, num_bessel=config["num_bessel"], num_polynomial_cutoff=5, max_ell=config["max_ell"],
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        num_interactions=config["num_interactions"], num_elements=len(elements),
        hidden_irreps=o3.Irreps(config["hidden_irreps"]), MLP_irreps=o3.Irreps("16x0e"),
        atomic_energies=np.zeros(len(elements)), avg_num_neighbors=10.0, atomic_numbers=elements,
        correlation=config["correlation"], gate=torch.nn.functional.silu, radial_MLP=[64, 64, 64],
        atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    ).to(dtype).eval()


def mace_inputs(model, atoms, dtype):
    from mace import data
    from mace.tools import torch_geometric, utils

    torch.set_default_dtype(dtype)
    table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
    graph = data.AtomicData.from_config(data.config_from_atoms(atoms), z_table=table, cutoff=CUTOFF)
    batch = next(iter(torch_geometric.dataloader.DataLoader([graph], batch_size=1, shuffle=False)))
    return batch.to_dict()


def mace_call(model, batch):
    return model(batch, compute_force=True)["forces"]


def mace_batch(model, frames, dtype):
    from mace import data
    from mace.tools import torch_geometric, utils

    torch.set_default_dtype(dtype)
    table = utils.AtomicNumberTable([int(z) for z in model.atomic_numbers])
    graphs = [data.AtomicData.from_config(data.config_from_atoms(atoms), z_table=table, cutoff=CUTOFF)
              for atoms in frames]
    loader = torch_geometric.dataloader.DataLoader(graphs, batch_size=len(graphs), shuffle=False)
    return next(iter(loader)).to_dict()


def mace_train_call(model, batch):
    out = model(batch, training=True, compute_force=True)
    return out["energy"], out["forces"]


# -- SchNetPack 2.1.1 --------------------------------------------------------------------------------
def _schnetpack():
    import typing

    import torch.utils.data.dataloader as loader

    if not hasattr(loader, "T_co"):  # removed from torch; schnetpack 2.1.1 imports it
        loader.T_co = typing.TypeVar("T_co", covariant=True)
    import schnetpack

    return schnetpack


def schnetpack_build(model: dict, dtype, elements):
    spk = _schnetpack()
    config = model["config"]
    representation = spk.representation.SchNet(
        n_atom_basis=config["features"], n_interactions=config["interactions"],
        radial_basis=spk.nn.GaussianRBF(n_rbf=config["basis"], cutoff=CUTOFF), cutoff_fn=spk.nn.CosineCutoff(CUTOFF))
    return spk.model.NeuralNetworkPotential(
        representation=representation, input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[spk.atomistic.Atomwise(n_in=config["features"], output_key="energy"),
                        spk.atomistic.Forces(energy_key="energy", force_key="forces")],
    ).to(dtype).eval()


def schnetpack_inputs(model, atoms, dtype):
    spk = _schnetpack()
    converter = spk.interfaces.AtomsConverter(neighbor_list=spk.transform.MatScipyNeighborList(cutoff=CUTOFF),
                                              dtype=dtype)
    return converter(atoms)


def schnetpack_call(model, inputs):
    return model(dict(inputs))["forces"]


def schnetpack_batch(model, frames, dtype):
    return schnetpack_inputs(model, frames, dtype)  # AtomsConverter collates a list of Atoms


def schnetpack_train_call(model, inputs):
    out = model(dict(inputs))
    return out["energy"], out["forces"]


# -- NequIP 0.19.1 ----------------------------------------------------------------------------------
def nequip_build(model: dict, dtype, elements):
    from ase.data import chemical_symbols
    from nequip.model import PresetNequIPGNNModel
    from nequip.utils.global_state import set_global_state

    set_global_state()  # seeds, default dtype and fuser settings; nequip requires it before building a model
    types = [chemical_symbols[z] for z in elements]
    model = PresetNequIPGNNModel(preset=model["config"]["preset"], seed=0, model_dtype=str(dtype).removeprefix("torch."),
                                r_max=CUTOFF, type_names=types, avg_num_neighbors=10.0).eval()
    model.nnip_type_names = types  # the inputs map each element to the model's type index
    return model


def nequip_inputs(model, atoms, dtype):
    from nequip.data import from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    data = ChemicalSpeciesToAtomTypeMapper(model_type_names=model.nnip_type_names)(from_ase(atoms))
    return NeighborListTransform(r_max=CUTOFF)(data)


def nequip_call(model, data):
    return model(dict(data))["forces"]


def nequip_batch(model, frames, dtype):
    from nequip.data import AtomicDataDict

    return AtomicDataDict.batched_from_list([nequip_inputs(model, atoms, dtype) for atoms in frames])


def nequip_train_call(model, data):
    out = model(dict(data))
    return out["total_energy"].reshape(-1), out["forces"]


# -- TorchANI 2.9 ----------------------------------------------------------------------------------
def torchani_build(model: dict, dtype, elements):
    from ase.data import chemical_symbols
    from torchani.aev import ANIAngular, ANIRadial
    from torchani.arch import Assembler
    from torchani.nn import ANINetworks

    config = model["config"]
    assembler = Assembler(periodic_table_index=True)
    assembler.set_symbols([chemical_symbols[z] for z in elements])
    assembler.set_global_cutoff_fn("cosine")
    assembler.set_aev_computer(
        radial=ANIRadial.cover_linearly(start=0.9, cutoff=CUTOFF, eta=16.0, num_shifts=config["radial"]),
        angular=ANIAngular.cover_linearly(start=0.9, eta=8.0, zeta=32.0, num_shifts=config["angular_shifts"],
                                          num_sections=config["sections"], cutoff=config["angular_cutoff"]),
        strategy="pyaev")
    assembler.set_atomic_networks(cls=ANINetworks, ctor="build",
                                  kwargs={"dims": {}, "default_dims": tuple(config["hidden"]), "activation": "celu",
                                          "bias": True})
    assembler.set_neighborlist(config.get("neighborlist", "cell_list"))
    assembler.set_zeros_as_self_energies()
    return assembler.assemble(1).to(dtype).eval()


def torchani_inputs(model, atoms, dtype):
    species = torch.tensor(atoms.numbers, dtype=torch.long).unsqueeze(0)
    positions = torch.tensor(atoms.positions, dtype=dtype).unsqueeze(0)
    periodic = bool(atoms.pbc.any())
    cell = torch.tensor(atoms.cell.array, dtype=dtype) if periodic else None
    pbc = torch.tensor(atoms.pbc) if periodic else None
    return species, positions, cell, pbc


def torchani_call(model, inputs):
    """The neighbour list is built inside TorchANI's forward, so it is part of this timing."""
    species, positions, cell, pbc = inputs
    positions = positions.detach().requires_grad_(True)
    energy = model((species, positions), cell=cell, pbc=pbc).energies
    return -torch.autograd.grad(energy.sum(), positions)[0]


PACKAGES = {
    "torchani": (torchani_build, torchani_inputs, torchani_call),
    "nequip": (nequip_build, nequip_inputs, nequip_call),
    "nnip": (nnip_build, nnip_inputs, nnip_call),
    "mace": (mace_build, mace_inputs, mace_call),
    "schnetpack": (schnetpack_build, schnetpack_inputs, schnetpack_call),
}
#: package -> (collate frames into one batch, training-mode call -> (energy (B,), forces (N, 3)))
TRAINING = {
    "nnip": (nnip_batch, nnip_train_call),
    "mace": (mace_batch, mace_train_call),
    "schnetpack": (schnetpack_batch, schnetpack_train_call),
    "nequip": (nequip_batch, nequip_train_call),
}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def targets(frames, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    energy = torch.tensor([atoms.get_potential_energy() for atoms in frames], dtype=dtype)
    forces = torch.cat([torch.tensor(atoms.get_forces(), dtype=dtype) for atoms in frames])
    return energy, forces


def time_training(package: str, model, frames: list, request: dict, dtype) -> float:
    """Seconds per training step (see the module docstring)."""
    collate, train_call = TRAINING[package]
    size = int(request["train"]["batch"])
    count = min(int(request["train"]["batches"]), len(frames) // size)
    if count == 0:
        raise ValueError(f"{len(frames)} frames do not fill one batch of {size}")
    batches = [frames[i:i + size] for i in range(0, size * count, size)]
    batches = [(collate(model, chunk, dtype), *targets(chunk, dtype)) for chunk in batches]
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step(batch, energy, forces):
        predicted_energy, predicted_forces = train_call(model, batch)
        loss = ((predicted_energy.reshape(-1) - energy) ** 2).mean() + ((predicted_forces - forces) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for batch in batches[:3]:  # warm-up
        step(*batch)
    started = time.perf_counter()
    for k in range(int(request["calls"])):
        step(*batches[k % len(batches)])
    return (time.perf_counter() - started) / int(request["calls"])


def retain_freed_memory_if_asked() -> None:
    """glibc-retain rows: nnip.md.allocator.retain_freed_memory, loaded from its file (no nnip in the peers' venvs)."""
    if os.environ.get("NNIP_PEERS_RETAIN_MEMORY") != "1":
        return
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "src" / "nnip" / "md" / "allocator.py"
    spec = importlib.util.spec_from_file_location("nnip_allocator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not module.retain_freed_memory():
        raise RuntimeError("glibc-retain asked for, but this process's malloc is not glibc's")


def frozen(model):
    """The model with no parameter requiring a gradient (every package alike)."""
    if isinstance(model, torch.nn.Module):
        model.requires_grad_(False)
    return model


def serve(package: str, model: dict) -> None:
    retain_freed_memory_if_asked()
    build, prepare, call = PACKAGES[package]
    answers, sys.stdout = sys.stdout, sys.stderr  # packages that print on import must not garble the answers
    torch.manual_seed(0)
    models, inputs = {}, {}
    for line in sys.stdin:
        request = json.loads(line)
        torch.set_num_threads(int(request.get("threads", 2)))
        dtype = getattr(torch, request["dtype"])
        if "train" in request:
            frames = read(request["xyz"], index=":")
            elements = sorted({int(z) for atoms in frames for z in atoms.numbers})
            seconds = time_training(package, build(model, dtype, elements), frames, request, dtype)
            print(json.dumps({"ms": 1000 * seconds, "peak_mb": peak_mb()}), file=answers, flush=True)
            continue
        atoms = read(request["xyz"])
        elements = sorted({int(z) for z in atoms.numbers})
        key = (request["dtype"], tuple(elements))
        if key not in models:  # frozen, as nnip.Calculator runs ours: forces need gradients by positions only
            models[key] = frozen(build(model, dtype, elements))
        if (key, request["xyz"]) not in inputs:
            inputs[(key, request["xyz"])] = prepare(models[key], atoms, dtype)
        potential, data = models[key], inputs[(key, request["xyz"])]
        call(potential, data)  # warm-up
        started = time.perf_counter()
        for _ in range(int(request["calls"])):
            call(potential, data)
        seconds = (time.perf_counter() - started) / int(request["calls"])
        print(json.dumps({"ms": 1000 * seconds, "peak_mb": peak_mb()}), file=answers, flush=True)


if __name__ == "__main__":
    serve(sys.argv[1], json.loads(sys.argv[2]))

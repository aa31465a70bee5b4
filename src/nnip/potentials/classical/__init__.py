"""Classical terms with trainable parameters: pair potentials (LJ, Morse, harmonic, Buckingham, ZBL) and fixed-charge Coulomb."""

"""Inputs for the oracle fixtures: score files generated from a seed, whose metrics the original
implementations computed when run (the fixtures beside them hold those numbers, never their code)."""

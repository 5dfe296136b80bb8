"""Where and how torch runs: the torch version the code needs, the devices a ``--device`` names, the CPUs a
task may use, CPU kernels and compilation.

May import: the shared top-level modules (:mod:`sasv.errors`). Imported by extraction, jobs and training.
"""

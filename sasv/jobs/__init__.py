"""Running work as jobs: Kaldi-style job commands (``utils/run.sh``, ``utils/slurm.sh``, ``JOB=1:N``), local
parallel jobs on devices, tasks submitted through ``--cmd``, and Slurm.

May import: the shared top-level modules, :mod:`sasv.runtime`, :mod:`sasv.models`, :mod:`sasv.extraction`
(the chunk worker the jobs run).
"""

"""The model stages of ``run_spk_ebd_extract.sh`` (stage 2: ASV embeddings, stage 3: CM scores): options,
locks, records and the resumable chunked driver that hands chunks to the job runners.

May import: everything below it (shared modules, runtime, corpora, models, extraction, jobs).
"""

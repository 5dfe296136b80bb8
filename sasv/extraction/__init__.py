"""Running a model over utterances: the engines (full utterance plus five 3 s segments for ASV embeddings,
the first 64,600 samples for CM scores), the chunk worker (plan, decoding, ``compute_chunks``) and the
formats of what it writes (:mod:`~sasv.extraction.outputs`).

May import: the shared top-level modules, :mod:`sasv.runtime`, :mod:`sasv.models`. Below the job runners
(:mod:`sasv.jobs` runs the chunk worker), never the reverse.
"""

"""The metrics, each computed as its official scorer computes it: the SASV EERs (:mod:`~sasv.metrics.eer`),
detection costs and a-DCF (:mod:`~sasv.metrics.detection_costs`), the ASVspoof 5 tandem metrics
(:mod:`~sasv.metrics.tandem`, also ASVspoof 2019/2021's min t-DCF and the 2021 package's per-condition
tables), the CM metrics of Track 1 (:mod:`~sasv.metrics.cm`), attack x codec breakdowns and bootstrap
intervals.

May import: the shared top-level modules, :mod:`sasv.corpora.protocols` (the trial keys) and
:mod:`sasv.runtime`. Pure numpy/scipy: no torch, no files.
"""

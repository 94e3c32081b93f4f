"""Campaigns: many simulated patients, each a scenario run on the emulator, on Dask (docs/campaigns.md).

- :mod:`.spec`       campaign files (TOML): distributions, fault classes, programs, per-run seeds,
                     and the scenario file of any single run;
- :mod:`.probe`      the detectors' statistics after every judged stroke and sensing window;
- :mod:`.statistics` which statistic feeds which alarm, its firmware threshold, the offline sweep;
- :mod:`.task`       one run in a worker process -> its result row and statistics tables;
- :mod:`.store`      the results directory (Parquet parts, resume, the final table);
- :mod:`.runner`     the Dask client side (LocalCluster or an existing scheduler);
- :mod:`.analysis`   sensitivity, time to alarm, false alarms per patient-year, ROC;
- :mod:`.report`     the campaign's HTML report (through pumphil.htmlreport).
"""

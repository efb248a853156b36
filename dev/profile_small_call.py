"""Dev profile of warm 5,000 x 5 find_label_issues calls from pandas: per action (collect/count) its seconds,
Spark jobs and caller (patches the classic DataFrame; benchmark-style tool, not library code).

    PYTHONPATH=. .venv/bin/python dev/profile_small_call.py
"""
import os
import sys
import time
import traceback

import numpy as np
import pandas as pd
from pyspark.sql.classic.dataframe import DataFrame

import sparknoise as sn
from sparknoise.jobs.session import local_spark
from sparknoise.noise.synthetic import noisy_probabilities

log = []
def wrap(name):
    orig = getattr(DataFrame, name)
    def f(self, *a, **k):
        st = traceback.extract_stack(limit=6)[:-1]
        where = [f"{os.path.basename(s.filename)}:{s.lineno}:{s.name}" for s in st if "sparknoise" in s.filename or 'prof' in s.filename][-2:]
        sc = spark.sparkContext
        j0 = max(sc.statusTracker().getJobIdsForGroup(None) or [-1])
        t = time.perf_counter()
        r = orig(self, *a, **k)
        log.append((name, round(time.perf_counter() - t, 3), max(sc.statusTracker().getJobIdsForGroup(None) or [-1]) - j0, where))
        return r
    setattr(DataFrame, name, f)
for n in ["collect", "count", "first", "take", "toPandas", "isLocal", "inputFiles"]:
    wrap(n)
spark = local_spark("prof", master="local[2]", driver_memory="2g", shuffle_partitions=4)
d = noisy_probabilities(5000, 5, noise_rate=0.2, seed=7)
pdf = pd.DataFrame({"id": np.arange(5000), "label": d.labels.astype(np.int64), "pred_probs": list(d.pred_probs)})
kw = dict(eval(sys.argv[1])) if len(sys.argv) > 1 else {}
for i in range(4):
    log.clear()
    t = time.perf_counter()
    df = spark.createDataFrame(pdf)
    t1 = time.perf_counter()
    res = sn.find_label_issues(df, **kw)
    t2 = time.perf_counter()
    n = res.rows.filter("is_label_issue").count()
    t3 = time.perf_counter()
    print(f"call {i}: create {t1-t:.3f} fli {t2-t1:.3f} count {t3-t2:.3f} n={n} timings={res.timings}")
for e in log:
    print(e)
spark.stop()

"""Many annotators per item: CROWDLAB consensus, annotator quality and active learning on Spark.

The same answers as ``cleanlab.multiannotator`` 2.9.0 on the long table (one row per item,
annotator and label), without ever building the items x annotators matrix.
"""

from sparknoise.multiannotator.crowdlab import MultiannotatorResult, multiannotator_quality

__all__ = ["MultiannotatorResult", "multiannotator_quality"]

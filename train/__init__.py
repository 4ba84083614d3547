"""Fit the gender head on cached backbone descriptors, evaluate it, plot it.

Modules: ``datasets`` (layouts), ``splits``, ``descriptors`` (ONNX backbone + cache),
``head_model`` (Keras head), ``calibration`` (Platt scaling folded into the head),
``metrics``, ``plots``, ``report``, ``train`` (the verb's work, :func:`train.train`),
``scoring`` (a classifier over labelled data), ``evaluate`` (:func:`evaluate.evaluate`)
and ``audit`` (:func:`audit.audit`, with ``groups``, ``group_metrics``, ``intervals``
and ``audit_report``).
"""

from gender_cli.api import make_callable

make_callable(__name__)  # gender_cli.train(...) runs the verb (gender_cli.api.train)

"""Fit the gender head on cached backbone descriptors, evaluate it, plot it.

Modules: ``datasets`` (layouts), ``splits``, ``descriptors`` (ONNX backbone + cache),
``head_model`` (Keras head), ``metrics``, ``plots``, ``report``, ``train`` (the verb's
work, :func:`train.train`) and ``evaluate`` (:func:`evaluate.evaluate`).
"""

"""gender-cli: VGG-Face (MatConvNet) weights to a fast, dependable gender classifier.

The package is split by job: ``convert`` reads MatConvNet files into a framework-free
layer table and builds Keras models, ``export`` writes the ONNX contract, ``train``
fits the gender head, ``infer`` decodes images and runs onnxruntime, ``bench``
measures speed and ``cli`` maps all of it onto the ``gender-cli`` command.
"""

__version__ = "0.1.0"

"""Inference path: file walking, image decoding, onnxruntime sessions. Never imports TensorFlow."""

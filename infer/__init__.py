"""Inference path: the classify pipeline (request -> engine -> writer), image decoding, face
detection, onnxruntime sessions. Never imports TensorFlow; docs/development.md maps its modules."""

"""Where inference runs: the ``--device`` choices every verb offers, in one place.

TensorFlow- and onnxruntime-free so that the CLI can build its options cheaply.
"""

DEVICES = ("auto", "cuda", "cpu")
DEFAULT_DEVICE = "auto"
DEVICE_HELP = (
    "Execution provider: 'cuda' (error if CUDA cannot load), 'cpu', or 'auto' "
    "(CUDA when it loads, else CPU; a notice says why when a GPU is present but CUDA "
    "cannot load)."
)

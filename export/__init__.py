"""Write the ONNX contract: preprocessing + backbone + head in one graph."""

from gender_cli.api import make_callable

make_callable(__name__)  # gender_cli.export(...) runs the verb (gender_cli.api.export)

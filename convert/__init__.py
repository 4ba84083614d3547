"""MatConvNet files to a framework-free layer table, and that table to Keras."""

from gender_cli.api import make_callable

make_callable(__name__)  # gender_cli.convert(...) runs the verb (gender_cli.api.convert)

"""MatConvNet files to a framework-free layer table, and that table to Keras."""

"""Write the ONNX contract: preprocessing + backbone + head in one graph."""

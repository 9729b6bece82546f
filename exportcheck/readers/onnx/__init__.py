"""The ONNX reader: a ModelProto's graphs and functions as the uniform view, weights never read."""

"""The export stage: one eval-mode model to ONNX, TorchScript and torch.export artifacts."""

"""Deployment: export to Paddle inference / ONNX (self-verifying), the predictor, and the benchmarks."""

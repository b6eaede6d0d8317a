"""Converters from the verified fp32 Paddle export to other forms: ONNX (`onnx`), fp16 (`fp16`), int8 ONNX
(`int8`) and TensorRT (`trt`). Each is called by the export pipeline (`pcls.deploy.export`) or, for TensorRT, by
the predictor on first use."""

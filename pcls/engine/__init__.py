"""The training engine: model building, the train loop, evaluation, checkpoints, distributed launch."""

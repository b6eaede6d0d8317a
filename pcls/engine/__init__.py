"""The training engine: `train()` and its loop (trainer.py), the resolved run config (run_config.py), the
components it builds (components.py), the callbacks around the loop (callbacks.py), models (model.py,
backbone.py), evaluation, checkpoints, run directories, multi-process launch. See the README's layout table."""

"""pcls: PaddleClas image classification as one package and one command.

The public API is imported lazily so that `import pcls` (and `pcls --help`) never pulls in paddle.
"""

__version__ = "0.1.0"

from pcls.doctor.paddle_guard import install as _install_paddle_guard  # noqa: E402 - Paddle < 3.0: one line

_install_paddle_guard()

from pcls.utils.logs import drop_unactionable_warnings  # noqa: E402 - before any pcls module imports paddle

drop_unactionable_warnings()

# public name -> "module:attribute"; resolved on first access (PEP 562).
_LAZY = {
    "create_model": "pcls.arch.registry:create_model",
    "list_models": "pcls.arch.registry:list_models",
    "register": "pcls.arch.registry:register",
    "load_config": "pcls.config:load_config",
    "PclsError": "pcls.errors:PclsError",
    "train": "pcls.engine.trainer:train",
    "Callback": "pcls.engine.callbacks:Callback",
    "register_callback": "pcls.engine.callbacks:register_callback",
    "RunOptions": "pcls.engine.run_config:RunOptions",
    "evaluate": "pcls.engine.evaluator:evaluate",
    "Predictor": "pcls.deploy.predictor:Predictor",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'pcls' has no attribute {name!r}")
    import importlib

    module_name, attr = target.split(":")
    value = getattr(importlib.import_module(module_name), attr)
    globals()[name] = value
    return value

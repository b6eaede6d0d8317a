"""Configs: PaddleClas 2.x YAML files and built-in recipes, `-o` overrides, schema validation.

    cfg = load_config("configs/ResNet50_vd.yaml", ["Global.epochs=10"])
    cfg = load_config("flowers102-finetune", is_recipe=True)
"""

from pcls.config.loader import dump_config, load_config, load_yaml_file
from pcls.config.overrides import apply_overrides, parse_override
from pcls.config.recipe_files import list_recipes, recipe_path

__all__ = [
    "load_config",
    "dump_config",
    "load_yaml_file",
    "apply_overrides",
    "parse_override",
    "list_recipes",
    "recipe_path",
]

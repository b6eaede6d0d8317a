"""The one name -> object table behind every pcls registry (backbones, model wrappers, losses, optimizers,
schedules, transform operators, datasets).

    LOSSES = Registry("loss", where="Loss", package="pcls.loss")
    @LOSSES.register()            # under the class name; or .register("OtherName")
    class CELoss(nn.Layer): ...
    LOSSES.get("CELos")           # PclsError: unknown loss 'CELos' in Loss (did you mean CELoss?); known: ...

Every registry refuses a second, different object under a taken name with the same message, and says
"did you mean" for an unknown one. With `package`, the modules of that package are imported on the first
lookup, so a new module only has to register its objects (no central list to edit).
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
from typing import Any, Callable, Dict, Iterable, Optional

from pcls.errors import PclsError, did_you_mean


class Registry:
    """Names -> objects of one kind, with duplicate refusal, did-you-mean lookup, listing and lazy discovery.

    kind: what the objects are ("backbone", "loss"); where: the config key that names them ("Loss"), for
    errors; package/skip: modules to import before the first lookup; listing: the hint for an unknown name
    (default: the sorted known names).
    """

    def __init__(self, kind: str, *, where: Optional[str] = None, package: Optional[str] = None,
                 skip: Iterable[str] = (), listing: Optional[str] = None):
        self.kind = kind
        self.where = where
        self.package = package
        self.skip = set(skip)
        self.listing = listing
        self._items: Dict[str, Any] = {}
        self._origin: Dict[str, str] = {}
        self._discovered = package is None

    # -- adding ---------------------------------------------------------------------------------------
    def add(self, name: str, obj: Any) -> Any:
        """Register `obj` under `name`; the same object again is a no-op, another one is refused."""
        origin = getattr(obj, "__module__", None) or "?"
        if name in self._items and self._items[name] is not obj:
            raise PclsError(f"{self.kind} '{name}' is registered twice ({self._origin[name]} and {origin}); "
                            f"rename one of them")
        self._items[name] = obj
        self._origin[name] = origin
        return obj

    def register(self, *names: str) -> Callable:
        """Decorator: register under `names`, or under the object's own __name__ when none are given."""

        def decorate(obj):
            for name in names or (obj.__name__,):
                self.add(name, obj)
            return obj

        return decorate

    # -- looking up -----------------------------------------------------------------------------------
    def _discover(self) -> None:
        if self._discovered:
            return
        self._discovered = True
        module = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(module.__path__):
            if info.name not in self.skip and not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")

    def __contains__(self, name) -> bool:
        self._discover()
        return name in self._items

    def get(self, name: str) -> Any:
        self._discover()
        if name not in self._items:
            where = f" in {self.where}" if self.where else ""
            hint = self.listing or f"known: {', '.join(sorted(self._items))}"
            raise PclsError(f"unknown {self.kind} '{name}'{where}{did_you_mean(str(name), self._items)}; {hint}")
        return self._items[name]

    def origin(self, name: str) -> str:
        """The module that registered `name`."""
        self.get(name)
        return self._origin[name]

    def names(self, pattern: str = "*") -> list:
        """Registered names matching a shell-style pattern (case-insensitive), sorted."""
        self._discover()
        return sorted(n for n in self._items if fnmatch.fnmatch(n.lower(), pattern.lower()))

    def registered(self) -> set:
        """The names registered so far, without importing the package's modules (no discovery)."""
        return set(self._items)

    def items(self) -> dict:
        self._discover()
        return dict(self._items)

    def __len__(self) -> int:
        self._discover()
        return len(self._items)

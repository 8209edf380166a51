"""Old module paths of the 0.1 layout, importable for one more release (the renovation, issue #11).

`import emollama.vision.video` still works: a meta-path finder answers the old name with the new module and
warns once (DeprecationWarning). Nothing inside emollama imports an old path; the import-linter contracts see
only the new layout, since these aliases are resolved at run time.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED: dict[str, str] = {
    "emollama.vision": "emollama.media",
    "emollama.vision.video": "emollama.media.video",
    "emollama.vision.sampling": "emollama.media.sampling",
    "emollama.vision.towers": "emollama.model.towers",
    "emollama.vision.transforms": "emollama.model.transforms",
    "emollama.analyze.media": "emollama.media.decode",
    "emollama.instruct.agr": "emollama.faces.agr",
    "emollama.evaluation.parse": "emollama.faces.labels",
    "emollama.data.prior_cache": "emollama.priors.cache",
    "emollama.data.prior_extract": "emollama.priors.extract",
    "emollama.data.prior_keys": "emollama.priors.keys",
    "emollama.data.prior_prepare": "emollama.priors.prepare",
    "emollama.data.frame_cache": "emollama.priors.frames",
    "emollama.faces.priors": "emollama.priors.from_faces",
    "emollama.training.priors": "emollama.priors.source",
}


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, new: str) -> None:
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        warnings.warn(f"{spec.name} moved to {self.new}; the old path goes away in the next release",
                      DeprecationWarning, stacklevel=2)
        module = importlib.import_module(self.new)
        self.spec = module.__spec__  # importlib stamps the alias spec on the module next; exec_module undoes it
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the new module is already executed: only give it back its own spec, so reload() and
        # importlib.resources keep working on it under its real name
        module.__spec__ = self.spec
        module.__name__, module.__package__ = self.spec.name, self.spec.parent
        if self.spec.submodule_search_locations is not None:
            module.__path__ = list(self.spec.submodule_search_locations)
        module.__loader__ = self.spec.loader


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object = None, target: object = None):
        new = MOVED.get(fullname)
        if new is None:
            if fullname.startswith("emollama.vision."):  # a pure alias package: no other children (no 2nd copies)
                raise ModuleNotFoundError(f"No module named {fullname!r} (emollama.vision became emollama.media "
                                          "and emollama.model; see docs/architecture.md)", name=fullname)
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(new), is_package=fullname == "emollama.vision")


def install() -> None:
    """Register the finder once (called by `emollama/__init__`)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _MovedFinder())  # before the path finder, which would load a second copy

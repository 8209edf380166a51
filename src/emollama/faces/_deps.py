"""Import the optional face stack (mediapipe, onnxruntime, ai-edge-litert, dlib) with a message that says how to fix it.

These packages are never imported at module import time: only inside the functions that need them.
"""

from __future__ import annotations

import importlib
from types import ModuleType

FIX = "run `python scripts/install_faces.py` (or `make demo`) to install the face stack with the --no-deps recipe"
_PIP = {
    "mediapipe": "mediapipe==0.10.21 (with --no-deps; protobuf>=4.25.3,<5)",
    "onnxruntime": "onnxruntime",
    "ai_edge_litert": "ai-edge-litert",
    "dlib": "dlib-bin",
    "cv2": "opencv-python-headless<5",
}


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)`` or an ImportError naming the package and the fix."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        raise ImportError(
            f"{module} is needed by the face analyzer but could not be imported ({err}); "
            f"it comes from {_PIP.get(top, top)}: {FIX}"
        ) from err

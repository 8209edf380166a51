"""`emollama convert llama-vid SRC DST`: turn a released LLaMA-VID checkpoint into an emollama model directory."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from emollama.cli.options import add_dataclass_arguments, arg, options_from_args
from emollama.model.convert_config import DEFAULT_FACE_PRESET

HELP = "convert a foreign checkpoint into an emollama model directory (formats: llama-vid)"

LLAMAVID_HELP = """\
Convert a LLaMA-VID checkpoint (e.g. YanweiLi/llama-vid-7b-full-224-video-fps-1) into an emollama model
directory (safetensors, config, processor, tokenizers). LLaMA-VID does not ship EVA-ViT-G or the Q-Former
tokenizer, so pass them too. The Face Info Mining modules (new in EMO-LLaMA) are randomly initialised.

example:
  emollama convert llama-vid ./llama-vid-7b-full-224-video-fps-1 ./emollama-base \\
      --eva ./LAVIS/eva_vit_g.pth --qformer-tokenizer ./bert-base-uncased
"""
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(kw_only=True)
class LlamaVidOptions:
    """`emollama convert llama-vid` options."""

    src: str = arg(positional=True, metavar="SRC",
                   help="LLaMA-VID model directory: config.json, pytorch_model.bin.index.json + "
                        "pytorch_model-0000x-of-0000y.bin shards (or one pytorch_model.bin / *.safetensors), "
                        "tokenizer")
    dst: str = arg(positional=True, metavar="DST",
                   help="output emollama model directory (created; must be new or empty)")
    eva: str | None = arg(None, metavar="PATH",
                          help="LAVIS eva_vit_g.pth (file, or a directory holding it). Default: config.json's "
                               "mm_vision_tower as written, then relative to SRC, then eva_vit_g.pth in SRC, then the "
                               "local 'eva_vit_g' asset (env var / cache, no download), then a complete "
                               "model.vision_tower.vision_tower.* copy inside the shards")
    qformer_tokenizer: str | None = arg(None, metavar="PATH",
                                        help="bert-base-uncased tokenizer directory (vocab.txt or tokenizer.json) for "
                                             "the Q-Former; [DEC] is added as BOS and truncation is set to left. "
                                             "Required: LLaMA-VID checkpoints do not contain it")
    face_preset: str = arg(DEFAULT_FACE_PRESET, metavar="NAME",
                           help="emollama preset (or YAML file) whose face_config sizes the new Face Info Mining "
                                "modules; it also gives frame_sampling and the head counts of non-standard widths "
                                "(default: {default})")
    overrides: list[str] = arg(default_factory=list, flag="--set", metavar="KEY=VALUE",
                               help="dotted config override applied last, e.g. --set face_config.num_queries=16 or "
                                    "--set frame_sampling=fps:1 (LLaMA-VID's 1 fps rule); --set "
                                    "vision_config.num_attention_heads=N / qformer_config.num_attention_heads=N also "
                                    "give the head count for widths the weights cannot reveal; repeatable")
    dtype: str = arg("bfloat16", choices=DTYPES,
                     help="dtype of the written weights (default {default}, the dtype LLaMA-VID ships; float32 "
                          "doubles the size without adding information)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    lv = formats.add_parser(
        "llama-vid",
        help="LLaMA-VID directory (config.json, pytorch_model*.bin or *.safetensors, tokenizer)",
        description=LLAMAVID_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_arguments(lv, LlamaVidOptions)


def run(args: argparse.Namespace) -> int:
    return convert_llama_vid(options_from_args(LlamaVidOptions, args))


def convert_llama_vid(opts: LlamaVidOptions) -> int:
    """Convert ``opts.src`` into ``opts.dst``; 1 when the destination is not empty."""
    import torch

    from emollama.model.convert import convert_llamavid

    try:
        out = convert_llamavid(
            opts.src,
            opts.dst,
            eva=opts.eva,
            qformer_tokenizer=opts.qformer_tokenizer,
            face_preset=opts.face_preset,
            overrides=opts.overrides,
            dtype=getattr(torch, opts.dtype),
        )
    except FileExistsError as err:  # not among the errors cli/__main__ turns into a message
        print(f"emollama convert: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote emollama model to {out}")
    print("note: the Face Info Mining weights are random (new in EMO-LLaMA); train them before use")
    print("load with: emollama.model.checkpoint.load_pretrained(DST)")
    return 0

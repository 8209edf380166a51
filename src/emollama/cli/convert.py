"""`emollama convert llama-vid SRC DST`: turn a released LLaMA-VID checkpoint into an emollama model directory."""

from __future__ import annotations

import argparse
import sys

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    formats = p.add_subparsers(dest="format", metavar="FORMAT", required=True)
    lv = formats.add_parser(
        "llama-vid",
        help="LLaMA-VID directory (config.json, pytorch_model*.bin or *.safetensors, tokenizer)",
        description=LLAMAVID_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    lv.add_argument(
        "src",
        metavar="SRC",
        help="LLaMA-VID model directory: config.json, pytorch_model.bin.index.json + "
        "pytorch_model-0000x-of-0000y.bin shards (or one pytorch_model.bin / *.safetensors), tokenizer",
    )
    lv.add_argument("dst", metavar="DST", help="output emollama model directory (created; must be new or empty)")
    lv.add_argument(
        "--eva",
        metavar="PATH",
        help="LAVIS eva_vit_g.pth (file, or a directory holding it). Default: "
        "config.json's mm_vision_tower as written, then relative to SRC, then eva_vit_g.pth in SRC, then "
        "the local 'eva_vit_g' asset (env var / cache, no download), then a complete "
        "model.vision_tower.vision_tower.* copy inside the shards",
    )
    lv.add_argument(
        "--qformer-tokenizer",
        metavar="PATH",
        help="bert-base-uncased tokenizer directory (vocab.txt or "
        "tokenizer.json) for the Q-Former; [DEC] is added as BOS and truncation is set to left. Required: "
        "LLaMA-VID checkpoints do not contain it",
    )
    lv.add_argument(
        "--face-preset",
        metavar="NAME",
        default="llama-vid-7b",
        help="emollama preset (or YAML file) whose face_config sizes the new Face Info Mining modules; it also "
        "gives frame_sampling and the head counts of non-standard widths (default: llama-vid-7b)",
    )
    lv.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted config override applied last, e.g. --set face_config.num_queries=16 or "
        "--set frame_sampling=fps:1 (LLaMA-VID's 1 fps rule); --set vision_config.num_attention_heads=N / "
        "qformer_config.num_attention_heads=N also give the head count for widths the weights cannot reveal; "
        "repeatable",
    )
    lv.add_argument("--dtype", choices=DTYPES, default="bfloat16",
                    help="dtype of the written weights (default bfloat16, the dtype LLaMA-VID ships; "
                    "float32 doubles the size without adding information)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import torch

    from emollama.model.convert import convert_llamavid

    try:
        out = convert_llamavid(
            args.src,
            args.dst,
            eva=args.eva,
            qformer_tokenizer=args.qformer_tokenizer,
            face_preset=args.face_preset,
            overrides=args.overrides,
            dtype=getattr(torch, args.dtype),
        )
    except FileExistsError as err:  # not among the errors cli/__main__ turns into a message
        print(f"emollama convert: error: {err}", file=sys.stderr)
        return 1
    print(f"wrote emollama model to {out}")
    print("note: the Face Info Mining weights are random (new in EMO-LLaMA); train them before use")
    print("load with: emollama.model.checkpoint.load_pretrained(DST)")
    return 0

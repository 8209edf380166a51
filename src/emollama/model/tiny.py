"""In-memory tokenizers for the `tiny` preset (tests, `make demo` before real weights): no files, no network.

The LM tokenizer is a WordLevel model over a fixed word list; the Q-Former tokenizer is a lower-casing WordPiece
with BERT specials and `[DEC]`, so both behave like their real counterparts in the code paths that matter.
"""

from __future__ import annotations

from importlib import resources

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from emollama.constants import PLACEHOLDER_TOKENS

PUNCT = list(".,?:{}'!;-()")
LM_SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", *PLACEHOLDER_TOKENS]
BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]"]


def tiny_words() -> list[str]:
    text = resources.files("emollama.resources").joinpath("tiny_words.txt").read_text()
    seen: dict[str, None] = {}
    for w in text.split():
        seen.setdefault(w, None)
    return list(seen)


def tiny_lm_tokenizer() -> PreTrainedTokenizerFast:
    """WordLevel LM tokenizer; ids 0-3 are <unk>, <s>, </s>, <pad>, then the placeholders."""
    vocab = {t: i for i, t in enumerate([*LM_SPECIALS, *PUNCT, *tiny_words()])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    fast.add_special_tokens({"additional_special_tokens": list(PLACEHOLDER_TOKENS)})
    return fast


def tiny_qformer_tokenizer() -> PreTrainedTokenizerFast:
    """Lower-casing WordPiece with [CLS] ... [SEP] wrapping, like BERT uncased + [DEC]."""
    words = sorted({w.lower() for w in tiny_words()})
    vocab = {t: i for i, t in enumerate([*BERT_SPECIALS, *PUNCT, *words])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[DEC]",
        truncation_side="left",
    )

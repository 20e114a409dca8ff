#!/usr/bin/env python3
"""Golden fixture for the Qwen-EM encoder: a tiny random Qwen3 embedding model, as sentence-transformers runs it.

What it pins (QwenEmbeddingFixtureTest compares the engine against it):
  * the Qwen3-Embedding recipe: last-token pooling on the <|endoftext|> the tokenizer appends, L2 normalisation;
  * the instruction format of queries, "Instruct: {task}\\nQuery:{text}" (sentence-transformers prompt "query");
  * truncation to max_seq_length tokens including the appended <|endoftext|>;
  * left padding in mixed-length batches.

The numbers come from sentence-transformers (SentenceTransformer.encode) on the saved directory; the script checks
them against the plain-transformers recipe of the Qwen3-Embedding model card (AutoModel + last_token_pool) and
stops if the two disagree by more than 1e-5. Nothing of the engine is used.

Run it on a machine that has torch, transformers (with Qwen3) and sentence-transformers; nothing is installed and
nothing is downloaded (the tokenizer is built here: the engine's byte-level tokenizer, ids 0..255 = bytes,
<|endoftext|> = 256):

    python3 trainer/src/test/python/make_qwen3_embedding_fixture.py OUT_DIR/qwen3_embedding_tiny

Then put the folder next to the other fixture cases (the folder RLSR_FIXTURES names, e.g. the shared fixtures folder) and
run  ./mvnw -o test -pl trainer -am -Dtest=QwenEmbeddingFixtureTest  with RLSR_FIXTURES set to that folder.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

import transformers
from transformers import AutoModel, AutoTokenizer, PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

import sentence_transformers
from sentence_transformers import SentenceTransformer

TASK = "Given a web search query, retrieve relevant passages that answer the query"
MAX_SEQ_LENGTH = 48
BATCH_SIZE = 3
QUERIES = [
    "What is the capital of China?",
    "Explain gravity",
    "a",
    "How do sentence embeddings reward a policy that samples several responses per prompt in RLSR training?",
    "",
]
DOCUMENTS = [
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. " * 3,  # longer than MAX_SEQ_LENGTH
    "ok",
    "Caf\u00e9 na\u00efve \u6771\u4eac \U0001F642",
]


def bytes_to_unicode():
    """GPT-2's map from bytes to the characters of a byte-level vocabulary."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def byte_level_tokenizer():
    """The engine's ByteLevelTokenizer (id = byte value, no merges) plus Qwen3-Embedding's appended <|endoftext|>."""
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")])
    assert tok.token_to_id("<|endoftext|>") == 256, tok.token_to_id("<|endoftext|>")
    # Qwen3-Embedding's tokenizer appends <|endoftext|> to every text; pooling takes the hidden state there
    tok.post_processor = processors.TemplateProcessing(single="$A <|endoftext|>",
                                                       pair="$A <|endoftext|> $B:1 <|endoftext|>:1",
                                                       special_tokens=[("<|endoftext|>", 256)])
    return tok


def last_token_pool(hidden, mask):
    """The Qwen3-Embedding model card's pooling."""
    left_padding = bool((mask[:, -1].sum() == mask.shape[0]).item())
    if left_padding:
        return hidden[:, -1]
    lengths = mask.sum(dim=1) - 1
    return hidden[torch.arange(hidden.shape[0]), lengths]


def main(out):
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(20261127)
    cfg = Qwen3Config(vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=256,
                      rms_norm_eps=1e-6, tie_word_embeddings=True)
    model = Qwen3Model(cfg).float().eval()
    with torch.no_grad():
        # every parameter away from its init value (norm weights are all ones after init)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)

    fast = PreTrainedTokenizerFast(tokenizer_object=byte_level_tokenizer(), eos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", padding_side="left",
                                   model_max_length=MAX_SEQ_LENGTH)
    fast.save_pretrained(out)

    # a sentence-transformers directory: Transformer -> last-token Pooling -> Normalize, with the query prompt
    with open(os.path.join(out, "modules.json"), "w") as f:
        json.dump([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                   {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}],
                  f, indent=1)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    with open(os.path.join(out, "1_Pooling", "config.json"), "w") as f:
        json.dump({"word_embedding_dimension": 64, "pooling_mode_cls_token": False,
                   "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
                   "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_weightedmean_tokens": False,
                   "pooling_mode_lasttoken": True, "include_prompt": True}, f, indent=1)
    os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    with open(os.path.join(out, "sentence_bert_config.json"), "w") as f:
        json.dump({"max_seq_length": MAX_SEQ_LENGTH, "do_lower_case": False}, f, indent=1)
    query_prompt = "Instruct: " + TASK + "\nQuery:"
    with open(os.path.join(out, "config_sentence_transformers.json"), "w") as f:
        json.dump({"prompts": {"query": query_prompt, "document": ""}, "default_prompt_name": None,
                   "similarity_fn_name": "cosine"}, f, indent=1)

    st = SentenceTransformer(out, device="cpu")
    st.float()
    assert st.max_seq_length == MAX_SEQ_LENGTH, st.max_seq_length
    q = st.encode(QUERIES, prompt_name="query", batch_size=BATCH_SIZE, normalize_embeddings=True,
                  convert_to_tensor=True).float().cpu()
    d = st.encode(DOCUMENTS, batch_size=BATCH_SIZE, normalize_embeddings=True, convert_to_tensor=True).float().cpu()

    # the same through plain transformers, the model card's recipe
    tok = AutoTokenizer.from_pretrained(out, padding_side="left")
    hf = AutoModel.from_pretrained(out).float().eval()

    def card(texts):
        rows = []
        for i in range(0, len(texts), BATCH_SIZE):
            batch = tok(texts[i:i + BATCH_SIZE], padding=True, truncation=True, max_length=MAX_SEQ_LENGTH,
                        return_tensors="pt")
            with torch.no_grad():
                h = hf(**batch).last_hidden_state
            rows.append(F.normalize(last_token_pool(h, batch["attention_mask"]), p=2, dim=1))
        return torch.cat(rows)

    q_card = card([query_prompt + t for t in QUERIES])
    d_card = card(DOCUMENTS)
    diff = max((q - q_card).abs().max().item(), (d - d_card).abs().max().item())
    print("sentence-transformers vs model-card recipe: max |diff| = %.3g" % diff)
    if diff > 1e-5:
        sys.exit("the two references disagree by %.3g; not writing the fixture" % diff)

    ids = lambda texts: [tok(t, truncation=True, max_length=MAX_SEQ_LENGTH)["input_ids"] for t in texts]
    query_ids = ids([query_prompt + t for t in QUERIES])
    document_ids = ids(DOCUMENTS)
    for row in query_ids + document_ids:
        assert row[-1] == 256 and len(row) <= MAX_SEQ_LENGTH, row

    save_file({"query_embeddings": q.contiguous(), "document_embeddings": d.contiguous()},
              os.path.join(out, "expected.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(out, "fixture.json"), "w") as f:
        json.dump({
            "kind": "qwen3_embedding",
            "task": TASK,
            "query_prompt": query_prompt,
            "max_seq_length": MAX_SEQ_LENGTH,
            "batch_size": BATCH_SIZE,
            "queries": QUERIES,
            "documents": DOCUMENTS,
            "query_input_ids": query_ids,
            "document_input_ids": document_ids,
            "reference": "sentence-transformers SentenceTransformer.encode(normalize_embeddings=True), queries with"
                         " prompt_name='query'; checked against AutoModel + last_token_pool (max |diff| %.3g)" % diff,
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "sentence_transformers": sentence_transformers.__version__},
        }, f, indent=1, ensure_ascii=False)
    print("wrote", out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_qwen3_embedding_fixture.py OUT_DIR")
    main(sys.argv[1])

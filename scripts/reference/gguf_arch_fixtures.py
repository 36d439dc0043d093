#!/usr/bin/python3
"""Float64 references for Qwen2ForCausalLM and GPT2LMHeadModel: HF folders the GGUF tests convert.

Writes, under test/fixtures/arch/, random-weight Hugging Face model folders (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) and, beside each, <name>.reference.safetensors
(float64: ids, logits [n, vocab] at every position of the teacher-forced text) and
<name>.reference.json (text, ids, greedy ids):

  qwen2/  Qwen2ForCausalLM, d 32, 4 heads / 2 kv heads, 2 layers, q/k/v biases, tied embedding,
          Qwen2's pre-tokenizer, a ChatML chat_template in tokenizer_config.json
  gpt2/   GPT2LMHeadModel, d 32, 4 heads, 2 layers, learned positions (n_positions 64), tied
          lm_head, the GPT-2 layout of neox_neo_fixtures.py's tokenizer (test/fixtures/models/
          tiny-gpt2 has head_dim 1, which llama.cpp cannot run)

GPT-2 (modeling_gpt2.py): x = wte[ids] + wpe[pos]; per block x += c_proj(attn(ln_1(x))),
x += mlp(ln_2(x)) with Conv1D weights [in, out] (y = x W + b), c_attn's columns q | k | v, scores
scaled by head_dim^-0.5, gelu_new; ln_f, logits = x wte^T.

The forward is written from transformers' modeling_qwen2.py conventions (transformers is not
used): RMSNorm x / sqrt(mean(x^2) + eps) * w, q/k/v projections with biases and o_proj without,
grouped-query attention (num_key_value_heads < num_attention_heads), rotate_half RoPE over the
whole head with cos/sin of cat(freqs, freqs) and base rope_theta, scores scaled by head_dim^-0.5,
causal softmax, SwiGLU MLP down(silu(gate(x)) * up(x)), final norm, lm_head tied to the embedding
(tie_word_embeddings true, no lm_head.weight in the file, as Qwen2.5-0.5B).

Vocabulary: the byte-level BPE of neox_neo_fixtures.py (same merges, same corpus), laid out as
Qwen2's (byte pieces first, then merges, then <|endoftext|>, <|im_start|>, <|im_end|>), with the
model's vocab_size padded beyond the tokenizer's (Qwen2: 151936 rows, 151665 tokens). The fixture
text is ASCII without digits, where Qwen2's regex splits as GPT-2's, so the script's GPT-2-style
encoder gives the ids (the tests check lmdyn's tokenizer against them).

Run: /usr/bin/python3 scripts/reference/qwen2_fixture.py   (Debian python3-torch; seed fixed)
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from neox_neo_fixtures import (  # noqa: E402
    BYTE_CHARS, CORPUS, GREEDY_TOKENS, N_MERGES, PROMPT, ROOT, TEXT, bpe_encode, gelu_new, greedy,
    layer_norm, learn_merges, normal, rotate_half, write_safetensors,
)
from neox_neo_fixtures import tokenizer_json as gpt_tokenizer_json  # noqa: E402

torch.set_default_dtype(torch.float64)
SEED = 20261208
NAME = 'qwen2'
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content']"
          " + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
          "{% endif %}")


def tokenizer_json(merges):
    pieces = [BYTE_CHARS[b] for b in sorted(BYTE_CHARS)] + [a + b for a, b in merges]
    vocab = {t: i for i, t in enumerate(pieces)}
    specials = ['<|endoftext|>', '<|im_start|>', '<|im_end|>']
    for s in specials:
        vocab[s] = len(vocab)
    byte_level = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False}
    tok = {
        'version': '1.0', 'truncation': None, 'padding': None,
        'added_tokens': [
            {'id': vocab[s], 'content': s, 'single_word': False, 'lstrip': False, 'rstrip': False,
             'normalized': False, 'special': True} for s in specials],
        'normalizer': {'type': 'NFC'},
        'pre_tokenizer': {'type': 'Sequence', 'pretokenizers': [
            {'type': 'Split', 'pattern': {'Regex': QWEN2_REGEX}, 'behavior': 'Isolated', 'invert': False},
            byte_level]},
        'post_processor': byte_level,
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': False, 'use_regex': False},
        'model': {
            'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': '',
            'end_of_word_suffix': '', 'fuse_unk': False, 'byte_fallback': False, 'ignore_merges': False,
            'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges]},
    }
    return tok, vocab


def weights(g, cfg):
    d, hd = cfg['hidden_size'], cfg['head_dim']
    q, kv, ff = cfg['num_attention_heads'] * hd, cfg['num_key_value_heads'] * hd, cfg['intermediate_size']
    w = {'model.embed_tokens.weight': normal(g, cfg['vocab_size'], d, std=1.0)}
    for l in range(cfg['num_hidden_layers']):
        p = f'model.layers.{l}.'
        w[p + 'input_layernorm.weight'] = 1 + normal(g, d, std=0.2)
        w[p + 'self_attn.q_proj.weight'] = normal(g, q, d, std=d ** -0.5)
        w[p + 'self_attn.q_proj.bias'] = normal(g, q, std=0.3)
        w[p + 'self_attn.k_proj.weight'] = normal(g, kv, d, std=d ** -0.5)
        w[p + 'self_attn.k_proj.bias'] = normal(g, kv, std=0.3)
        w[p + 'self_attn.v_proj.weight'] = normal(g, kv, d, std=d ** -0.5)
        w[p + 'self_attn.v_proj.bias'] = normal(g, kv, std=0.3)
        w[p + 'self_attn.o_proj.weight'] = normal(g, d, q, std=q ** -0.5)
        w[p + 'post_attention_layernorm.weight'] = 1 + normal(g, d, std=0.2)
        w[p + 'mlp.gate_proj.weight'] = normal(g, ff, d, std=d ** -0.5)
        w[p + 'mlp.up_proj.weight'] = normal(g, ff, d, std=d ** -0.5)
        w[p + 'mlp.down_proj.weight'] = normal(g, d, ff, std=ff ** -0.5)
    w['model.norm.weight'] = 1 + normal(g, d, std=0.2)
    return w


def rms_norm(x, w, eps):
    return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):
    """rotate_half RoPE on x [heads, n, hd] at positions 0..n-1."""
    hd, n = x.shape[-1], x.shape[-2]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    ang = torch.outer(torch.arange(n, dtype=torch.float64), inv)
    emb = torch.cat((ang, ang), dim=-1)
    return x * emb.cos() + rotate_half(x) * emb.sin()


def block(cfg, w, l, x):
    p = f'model.layers.{l}.'
    n, hd = x.shape[0], cfg['head_dim']
    H, K = cfg['num_attention_heads'], cfg['num_key_value_heads']
    eps, theta = cfg['rms_norm_eps'], cfg['rope_theta']
    h = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
    lin = lambda name, y: y @ w[p + name + '.weight'].T + w.get(p + name + '.bias', 0)  # noqa: E731
    q = lin('self_attn.q_proj', h).reshape(n, H, hd).transpose(0, 1)
    k = lin('self_attn.k_proj', h).reshape(n, K, hd).transpose(0, 1)
    v = lin('self_attn.v_proj', h).reshape(n, K, hd).transpose(0, 1)
    q, k = rope(q, theta), rope(k, theta)
    k = k.repeat_interleave(H // K, dim=0)
    v = v.repeat_interleave(H // K, dim=0)
    scores = q @ k.transpose(-1, -2) * hd ** -0.5
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    att = torch.softmax(torch.where(mask, scores, torch.tensor(-math.inf)), dim=-1) @ v
    x = x + att.transpose(0, 1).reshape(n, H * hd) @ w[p + 'self_attn.o_proj.weight'].T
    h = rms_norm(x, w[p + 'post_attention_layernorm.weight'], eps)
    gate = h @ w[p + 'mlp.gate_proj.weight'].T
    up = h @ w[p + 'mlp.up_proj.weight'].T
    return x + (torch.nn.functional.silu(gate) * up) @ w[p + 'mlp.down_proj.weight'].T


def gpt2_weights(g, cfg):
    d, V, P, ff = cfg['n_embd'], cfg['vocab_size'], cfg['n_positions'], 4 * cfg['n_embd']
    w = {'transformer.wte.weight': normal(g, V, d), 'transformer.wpe.weight': normal(g, P, d, std=0.3)}
    for l in range(cfg['n_layer']):
        p = f'transformer.h.{l}.'
        w[p + 'ln_1.weight'], w[p + 'ln_1.bias'] = 1 + normal(g, d, std=0.2), normal(g, d, std=0.2)
        w[p + 'attn.c_attn.weight'] = normal(g, d, 3 * d, std=d ** -0.5)
        w[p + 'attn.c_attn.bias'] = normal(g, 3 * d, std=0.3)
        w[p + 'attn.c_proj.weight'] = normal(g, d, d, std=d ** -0.5)
        w[p + 'attn.c_proj.bias'] = normal(g, d, std=0.2)
        w[p + 'ln_2.weight'], w[p + 'ln_2.bias'] = 1 + normal(g, d, std=0.2), normal(g, d, std=0.2)
        w[p + 'mlp.c_fc.weight'] = normal(g, d, ff, std=d ** -0.5)
        w[p + 'mlp.c_fc.bias'] = normal(g, ff, std=0.2)
        w[p + 'mlp.c_proj.weight'] = normal(g, ff, d, std=ff ** -0.5)
        w[p + 'mlp.c_proj.bias'] = normal(g, d, std=0.2)
    w['transformer.ln_f.weight'], w['transformer.ln_f.bias'] = 1 + normal(g, d, std=0.2), normal(g, d, std=0.2)
    return w


def gpt2_block(cfg, w, l, x):
    p = f'transformer.h.{l}.'
    n, d, H = x.shape[0], cfg['n_embd'], cfg['n_head']
    hd, eps = d // H, cfg['layer_norm_epsilon']
    h = layer_norm(x, w[p + 'ln_1.weight'], w[p + 'ln_1.bias'], eps)
    qkv = h @ w[p + 'attn.c_attn.weight'] + w[p + 'attn.c_attn.bias']
    q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(n, H, hd).transpose(0, 1) for i in range(3))
    scores = q @ k.transpose(-1, -2) * hd ** -0.5
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    att = torch.softmax(torch.where(mask, scores, torch.tensor(-math.inf)), dim=-1) @ v
    x = x + att.transpose(0, 1).reshape(n, d) @ w[p + 'attn.c_proj.weight'] + w[p + 'attn.c_proj.bias']
    h = layer_norm(x, w[p + 'ln_2.weight'], w[p + 'ln_2.bias'], eps)
    h = gelu_new(h @ w[p + 'mlp.c_fc.weight'] + w[p + 'mlp.c_fc.bias'])
    return x + h @ w[p + 'mlp.c_proj.weight'] + w[p + 'mlp.c_proj.bias']


def write_gpt2(g, merges):
    tok, vocab, eos = gpt_tokenizer_json('neo', merges)
    cfg = {
        'architectures': ['GPT2LMHeadModel'], 'model_type': 'gpt2', 'n_embd': 32, 'n_head': 4,
        'n_layer': 2, 'n_inner': None, 'n_positions': 64, 'n_ctx': 64, 'vocab_size': len(vocab),
        'activation_function': 'gelu_new', 'layer_norm_epsilon': 1e-5, 'bos_token_id': eos,
        'eos_token_id': eos, 'tie_word_embeddings': True, 'torch_dtype': 'float32',
    }
    w = write_folder('gpt2', cfg, gpt2_weights(g, cfg), tok, {
        'bos_token': '<|endoftext|>', 'eos_token': '<|endoftext|>', 'add_bos_token': False,
        'model_max_length': 64})
    embed = lambda ids: w['transformer.wte.weight'][torch.tensor(ids)] + w['transformer.wpe.weight'][:len(ids)]  # noqa: E731
    blk = lambda l, x: gpt2_block(cfg, w, l, x)  # noqa: E731
    final = lambda x: layer_norm(x, w['transformer.ln_f.weight'], w['transformer.ln_f.bias'], cfg['layer_norm_epsilon']) @ w['transformer.wte.weight'].T  # noqa: E731
    write_reference('gpt2', cfg['n_layer'], embed, blk, final, vocab, merges)


def write_folder(name, cfg, raw, tok, tok_config):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    stored = {k: v.to(torch.float32) for k, v in raw.items()}
    write_safetensors(os.path.join(folder, 'model.safetensors'), stored, {'format': 'pt'})
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)
        f.write('\n')
    with open(os.path.join(folder, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_config, f, indent=2)
        f.write('\n')
    return {k: v.to(torch.float64) for k, v in stored.items()}


def write_reference(name, L, embed, blk, final, vocab, merges):
    ids = bpe_encode(TEXT, vocab, merges)
    x = embed(ids)
    for l in range(L):
        x = blk(l, x)
    logits = final(x)
    prompt_ids = bpe_encode(PROMPT, vocab, merges)
    greedy_ids, margin = greedy(embed, blk, final, L, prompt_ids, GREEDY_TOKENS)
    write_safetensors(os.path.join(ROOT, f'{name}.reference.safetensors'), {
        'ids': torch.tensor(ids, dtype=torch.float64), 'logits': logits.detach()})
    with open(os.path.join(ROOT, f'{name}.reference.json'), 'w') as f:
        json.dump({'text': TEXT, 'ids': ids, 'greedy_prompt': PROMPT, 'greedy_prompt_ids': prompt_ids,
                   'greedy_ids': greedy_ids, 'greedy_min_margin': margin,
                   'made_by': 'scripts/reference/gguf_arch_fixtures.py', 'seed': SEED}, f, indent=2)
        f.write('\n')
    print(f'{name}: {len(ids)} tokens, greedy margin {margin:.3g}', file=sys.stderr)


def main():
    g = torch.Generator().manual_seed(SEED)
    merges = learn_merges(CORPUS, N_MERGES)
    tok, vocab = tokenizer_json(merges)
    cfg = {
        'architectures': ['Qwen2ForCausalLM'], 'model_type': 'qwen2', 'hidden_size': 32,
        'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 8, 'num_hidden_layers': 2,
        'intermediate_size': 64, 'hidden_act': 'silu', 'max_position_embeddings': 64,
        'rms_norm_eps': 1e-6, 'rope_theta': 1000000.0, 'vocab_size': 320,
        'tie_word_embeddings': True, 'use_sliding_window': False, 'bos_token_id': vocab['<|endoftext|>'],
        'eos_token_id': vocab['<|im_end|>'], 'torch_dtype': 'float32',
    }
    w = write_folder(NAME, cfg, weights(g, cfg), tok, {
        'bos_token': None, 'eos_token': '<|im_end|>', 'pad_token': '<|endoftext|>',
        'add_bos_token': False, 'chat_template': CHATML, 'model_max_length': 64})
    embed = lambda ids: w['model.embed_tokens.weight'][torch.tensor(ids)]  # noqa: E731
    blk = lambda l, x: block(cfg, w, l, x)  # noqa: E731
    final = lambda x: rms_norm(x, w['model.norm.weight'], cfg['rms_norm_eps']) @ w['model.embed_tokens.weight'].T  # noqa: E731
    write_reference(NAME, cfg['num_hidden_layers'], embed, blk, final, vocab, merges)
    write_gpt2(g, merges)


if __name__ == '__main__':
    main()

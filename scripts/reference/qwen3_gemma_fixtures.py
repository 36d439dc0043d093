#!/usr/bin/python3
"""Float64 references for Qwen3ForCausalLM, Gemma2ForCausalLM and Gemma3ForCausalLM (text).

Writes, under test/fixtures/arch/, three small random-weight Hugging Face model folders and, beside
each, the float64 reference that test/model/arch-gemma.test.ts compares lmdyn with (the same
arrays as scripts/reference/neox_neo_fixtures.py writes, whose helpers this script imports):

  qwen3/   Qwen3ForCausalLM: per-head q/k RMSNorm before RoPE, head_dim 16 while
           hidden_size / heads = 8, grouped-query attention, tied embeddings, bfloat16 weights,
           byte-level BPE
  gemma2/  Gemma2ForCausalLM: norms scale by (1 + weight), embeddings times sqrt(hidden_size)
           (cast to the weights' dtype), gelu_pytorch_tanh-gated MLP, pre- and post-norms around
           attention and MLP, attention logit soft-capping (cap 2) and final logit soft-capping
           (cap 3), layers 0 and 2 sliding (window 5 < the text) and 1 global,
           query_pre_attn_scalar 24 (not head_dim), float32 weights
  gemma3/  Gemma3ForCausalLM: Gemma 2's block without soft-capping, plus q/k RMSNorm (1 + weight)
           before RoPE; sliding_window_pattern 3 (layers 0, 1, 3 sliding, 2 global), local RoPE
           base rope_local_base_freq 100 vs rope_theta 10000 on the global layer, window 6,
           bfloat16 weights (so the embedding scale is sqrt(32) rounded to bfloat16, 5.65625)

  <name>.reference.safetensors  float64 results stored as float32: ids, logits [n, vocab] at
           every position of the teacher-forced text, hidden [L+1, n, d] (HF hidden_states before
           the final norm; [0] is the scaled embedding), jacobians [L, d, d] = d f^l(X)_T / d x^{l-1}_T (block output
           minus its input, other positions fixed) at T = n - 1, cross [d, d] =
           d f^l(X)_T / d x^{l-1}_t1 for the layer and t1 in <name>.reference.json.

The forward below is written from the conventions of transformers' modeling_qwen3.py,
modeling_gemma2.py and modeling_gemma3.py (transformers itself is not used):
- Qwen3: q = q_norm(q_proj(x).view(heads, head_dim)), k likewise (RMSNorm over head_dim, weight
  as is), then rotate_half RoPE; scores * head_dim^-0.5; SwiGLU MLP; Llama's two pre-norms.
- Gemma 2/3: RMSNorm output * (1 + weight); h0 = embed * tensor(hidden_size**0.5, dtype=weights');
  x = x + post_attention_layernorm(attn(input_layernorm(x)));
  x = x + post_feedforward_layernorm(mlp(pre_feedforward_layernorm(x)));
  mlp = down(gelu_tanh(gate(h)) * up(h)); scores * query_pre_attn_scalar^-0.5, then (Gemma 2)
  cap * tanh(scores / cap) before the mask; sliding layers keep keys with kv > q - sliding_window
  (masking_utils.sliding_window_overlay; Gemma 2's tril(diagonal=-sliding_window) is the same);
  Gemma 2's sliding layers are the even ones (layer_idx % 2 == 0), Gemma 3's those with
  (i + 1) % sliding_window_pattern != 0, whose RoPE base is rope_local_base_freq; logits =
  cap * tanh(logits / cap) with final_logit_softcapping (Gemma 2 here).

Tokenizers: Qwen3 gets the byte-level BPE of neox_neo_fixtures.py (Qwen2's layout: no BOS,
<|endoftext|> last). The Gemma folders get a SentencePiece-style BPE in tokenizer.json as Gemma
ships it: normalizer Replace ' ' -> '\u2581', Gemma 3's Split-on-' ' pre-tokenizer (a no-op after
the normalizer), byte_fallback with <0x00>..<0xFF>, <pad> 0, <eos> 1, <bos> 2, <unk> 3, a
TemplateProcessing post-processor that prepends <bos>, and the Replace / ByteFallback / Fuse
decoder. The text has an 'é' that is not in the vocabulary, so it
is encoded as its two UTF-8 bytes.

Run: /usr/bin/python3 scripts/reference/qwen3_gemma_fixtures.py   (Debian python3-torch; seed fixed)
"""

import json
import math
import os
import struct
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import neox_neo_fixtures as base  # noqa: E402  (tokenizer, reference, greedy helpers)

torch.set_default_dtype(torch.float64)
ROOT = base.ROOT
SEED = 20261208
CORPUS = base.CORPUS
TEXT = "Once upon a time, the little cat saw a big ball in the café. He was happy."
PROMPT = "Once upon a time,"
GREEDY_TOKENS = 12
SP = '\u2581'
MADE_BY = 'scripts/reference/qwen3_gemma_fixtures.py'


# ---- safetensors with bfloat16 ------------------------------------------------------------------

def write_safetensors(path, tensors, metadata=None):
    """base.write_safetensors plus BF16 (raw bits of torch.bfloat16)."""
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        if t.dtype == torch.bfloat16:
            code, flat, fmt = 'BF16', t.contiguous().view(torch.int16).reshape(-1).tolist(), 'h'
        else:
            code, fmt = base.DTYPES[t.dtype]
            flat = t.contiguous().reshape(-1).tolist()
        blob = struct.pack(f'<{len(flat)}{fmt}', *flat)
        header[name] = {'dtype': code, 'shape': list(t.shape), 'data_offsets': [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header['__metadata__'] = metadata
    h = json.dumps(header, separators=(',', ':')).encode('utf-8')
    h += b' ' * ((8 - len(h) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


# ---- SentencePiece-style BPE (Gemma's tokenizer.json) -------------------------------------------

def sp_learn(text, n):
    """Merges learned inside '▁word' pieces of the normalized corpus."""
    norm = text.replace(' ', SP)
    seqs = [list(SP + w) if i > 0 else list(w) for i, w in enumerate(norm.split(SP))]
    merges = []
    for _ in range(n):
        counts = {}
        for s in seqs:
            for a, b in zip(s, s[1:]):
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
        merges.append(best)
        for s in seqs:
            i = 0
            while i < len(s) - 1:
                if (s[i], s[i + 1]) == best:
                    s[i:i + 2] = [s[i] + s[i + 1]]
                i += 1
    return merges


def sp_tokenizer(merges):
    specials = ['<pad>', '<eos>', '<bos>', '<unk>']
    byte_tokens = [f'<0x{b:02X}>' for b in range(256)]
    chars = sorted(set(CORPUS.replace(' ', SP)) | {SP})
    pieces = chars + [a + b for a, b in merges]
    vocab = {t: i for i, t in enumerate(specials + byte_tokens + pieces)}
    tok = {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [
            {'id': i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False,
             'normalized': False, 'special': True}
            for i, c in enumerate(specials)
        ],
        'normalizer': {'type': 'Replace', 'pattern': {'String': ' '}, 'content': SP},
        # A no-op after the normalizer (no spaces are left); Gemma 3's tokenizer.json has it.
        'pre_tokenizer': {'type': 'Split', 'pattern': {'String': ' '}, 'behavior': 'MergedWithPrevious',
                          'invert': False},
        'post_processor': {
            'type': 'TemplateProcessing',
            'single': [{'SpecialToken': {'id': '<bos>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}}],
            'pair': [{'SpecialToken': {'id': '<bos>', 'type_id': 0}}, {'Sequence': {'id': 'A', 'type_id': 0}},
                     {'SpecialToken': {'id': '<bos>', 'type_id': 1}}, {'Sequence': {'id': 'B', 'type_id': 1}}],
            'special_tokens': {'<bos>': {'id': '<bos>', 'ids': [2], 'tokens': ['<bos>']}},
        },
        'decoder': {'type': 'Sequence', 'decoders': [
            {'type': 'Replace', 'pattern': {'String': SP}, 'content': ' '},
            {'type': 'ByteFallback'},
            {'type': 'Fuse'},
        ]},
        'model': {
            'type': 'BPE', 'dropout': None, 'unk_token': '<unk>', 'continuing_subword_prefix': None,
            'end_of_word_suffix': None, 'fuse_unk': True, 'byte_fallback': True, 'ignore_merges': False,
            'vocab': vocab, 'merges': [[a, b] for a, b in merges],
        },
    }
    return tok, vocab


def sp_encode(text, vocab, merges, bos=True):
    """HF BPE after the normalizer (the Split on ' ' then finds no space): the whole normalized
    text is one word; lowest-rank pair
    first (leftmost on ties); characters outside the vocabulary become their UTF-8 byte tokens."""
    rank = {m: i for i, m in enumerate(merges)}
    s = list(text.replace(' ', SP))
    while len(s) > 1:
        pairs = [(rank.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(s, s[1:]))]
        r, i = min(pairs)
        if r == math.inf:
            break
        s[i:i + 2] = [s[i] + s[i + 1]]
    ids = [2] if bos else []
    for t in s:
        if t in vocab:
            ids.append(vocab[t])
        else:
            ids.extend(vocab[f'<0x{b:02X}>'] for b in t.encode('utf-8'))
    return ids


# ---- random weights -----------------------------------------------------------------------------

def normal(g, *shape, std=1.0):
    return torch.randn(*shape, generator=g) * std


def qwen3_weights(g, cfg):
    d, hid, L = cfg['hidden_size'], cfg['intermediate_size'], cfg['num_hidden_layers']
    H, K, hd = cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['head_dim']
    w = {'model.embed_tokens.weight': normal(g, cfg['vocab_size'], d)}
    for l in range(L):
        p = f'model.layers.{l}.'
        w[p + 'input_layernorm.weight'] = 1 + normal(g, d, std=0.2)
        w[p + 'self_attn.q_proj.weight'] = normal(g, H * hd, d, std=1 / math.sqrt(d))
        w[p + 'self_attn.k_proj.weight'] = normal(g, K * hd, d, std=1 / math.sqrt(d))
        w[p + 'self_attn.v_proj.weight'] = normal(g, K * hd, d, std=1 / math.sqrt(d))
        w[p + 'self_attn.o_proj.weight'] = normal(g, d, H * hd, std=1 / math.sqrt(H * hd))
        # After q/k RMSNorm each head has norm ~ sqrt(hd): small gains keep the softmax soft.
        w[p + 'self_attn.q_norm.weight'] = 0.5 + normal(g, hd, std=0.1)
        w[p + 'self_attn.k_norm.weight'] = 0.5 + normal(g, hd, std=0.1)
        w[p + 'post_attention_layernorm.weight'] = 1 + normal(g, d, std=0.2)
        w[p + 'mlp.gate_proj.weight'] = normal(g, hid, d, std=1 / math.sqrt(d))
        w[p + 'mlp.up_proj.weight'] = normal(g, hid, d, std=1 / math.sqrt(d))
        w[p + 'mlp.down_proj.weight'] = normal(g, d, hid, std=1 / math.sqrt(hid))
    w['model.norm.weight'] = 1 + normal(g, d, std=0.2)
    return w


def gemma_weights(g, cfg, qk_norm):
    """Norm weights are stored as w with the effective gain 1 + w (Gemma's RMSNorm)."""
    d, hid, L = cfg['hidden_size'], cfg['intermediate_size'], cfg['num_hidden_layers']
    H, K, hd = cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['head_dim']
    w = {'model.embed_tokens.weight': normal(g, cfg['vocab_size'], d, std=0.3)}
    for l in range(L):
        p = f'model.layers.{l}.'
        for norm in ('input_layernorm', 'post_attention_layernorm', 'pre_feedforward_layernorm',
                     'post_feedforward_layernorm'):
            w[p + norm + '.weight'] = normal(g, d, std=0.2)
        w[p + 'self_attn.q_proj.weight'] = normal(g, H * hd, d, std=1.5 / math.sqrt(d))
        w[p + 'self_attn.k_proj.weight'] = normal(g, K * hd, d, std=1.5 / math.sqrt(d))
        w[p + 'self_attn.v_proj.weight'] = normal(g, K * hd, d, std=1 / math.sqrt(d))
        w[p + 'self_attn.o_proj.weight'] = normal(g, d, H * hd, std=1 / math.sqrt(H * hd))
        if qk_norm:
            w[p + 'self_attn.q_norm.weight'] = normal(g, hd, std=0.2)
            w[p + 'self_attn.k_norm.weight'] = normal(g, hd, std=0.2)
        w[p + 'mlp.gate_proj.weight'] = normal(g, hid, d, std=1 / math.sqrt(d))
        w[p + 'mlp.up_proj.weight'] = normal(g, hid, d, std=1 / math.sqrt(d))
        w[p + 'mlp.down_proj.weight'] = normal(g, d, hid, std=1 / math.sqrt(hid))
    w['model.norm.weight'] = normal(g, d, std=0.2)
    return w


# ---- float64 forward, HF conventions ------------------------------------------------------------

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def gemma_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * (1.0 + w)


def gelu_tanh(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rope_rotate(x, inv_freq):
    """rotate_half RoPE of x [heads, n, hd] at positions 0..n-1."""
    n = x.shape[-2]
    freqs = torch.outer(torch.arange(n, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return x * emb.cos() + base.rotate_half(x) * emb.sin()


def inv_freq(theta, hd):
    return 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))


def attention(cfg, w, p, h, q_norm, scale, theta, window, softcap):
    """Self-attention of h [n, d] (already normed); returns o_proj's output [n, d]."""
    n, d = h.shape
    H, K, hd = cfg['num_attention_heads'], cfg['num_key_value_heads'], cfg['head_dim']
    q = (h @ w[p + 'self_attn.q_proj.weight'].T).view(n, H, hd).transpose(0, 1)
    k = (h @ w[p + 'self_attn.k_proj.weight'].T).view(n, K, hd).transpose(0, 1)
    v = (h @ w[p + 'self_attn.v_proj.weight'].T).view(n, K, hd).transpose(0, 1)
    if q_norm is not None:
        q = q_norm(q, w[p + 'self_attn.q_norm.weight'])
        k = q_norm(k, w[p + 'self_attn.k_norm.weight'])
    f = inv_freq(theta, hd)
    q, k = rope_rotate(q, f), rope_rotate(k, f)
    k = k.repeat_interleave(H // K, dim=0)
    v = v.repeat_interleave(H // K, dim=0)
    scores = (q @ k.transpose(-1, -2)) * scale
    if softcap is not None:
        scores = softcap * torch.tanh(scores / softcap)
    i = torch.arange(n)[:, None]
    j = torch.arange(n)[None, :]
    mask = j <= i
    if window is not None:
        mask = mask & (j > i - window)
    att = base.softmax_masked(scores, mask)
    z = (att @ v).transpose(0, 1).reshape(n, H * hd)
    return z @ w[p + 'self_attn.o_proj.weight'].T


def qwen3_block(cfg, w, l, x):
    eps = cfg['rms_norm_eps']
    p = f'model.layers.{l}.'
    hd = cfg['head_dim']
    h = rms_norm(x, w[p + 'input_layernorm.weight'], eps)
    mid = x + attention(cfg, w, p, h, lambda t, wt: rms_norm(t, wt, eps), hd ** -0.5,
                        cfg['rope_theta'], None, None)
    h2 = rms_norm(mid, w[p + 'post_attention_layernorm.weight'], eps)
    gate = h2 @ w[p + 'mlp.gate_proj.weight'].T
    up = h2 @ w[p + 'mlp.up_proj.weight'].T
    return mid + (torch.nn.functional.silu(gate) * up) @ w[p + 'mlp.down_proj.weight'].T


def qwen3_final(cfg, w, x):
    return rms_norm(x, w['model.norm.weight'], cfg['rms_norm_eps']) @ w['model.embed_tokens.weight'].T


def gemma_layer_types(cfg):
    L = cfg['num_hidden_layers']
    if cfg['architectures'][0] == 'Gemma2ForCausalLM':
        return ['sliding' if l % 2 == 0 else 'full' for l in range(L)]
    pattern = cfg.get('sliding_window_pattern', 6)
    return ['sliding' if (l + 1) % pattern else 'full' for l in range(L)]


def gemma_block(cfg, w, l, x):
    eps = cfg['rms_norm_eps']
    p = f'model.layers.{l}.'
    gemma3 = cfg['architectures'][0] == 'Gemma3ForCausalLM'
    sliding = gemma_layer_types(cfg)[l] == 'sliding'
    theta = cfg['rope_local_base_freq'] if gemma3 and sliding else cfg['rope_theta']
    qn = (lambda t, wt: gemma_norm(t, wt, eps)) if gemma3 else None
    softcap = None if gemma3 else cfg.get('attn_logit_softcapping')
    h = gemma_norm(x, w[p + 'input_layernorm.weight'], eps)
    a = attention(cfg, w, p, h, qn, cfg['query_pre_attn_scalar'] ** -0.5, theta,
                  cfg['sliding_window'] if sliding else None, softcap)
    mid = x + gemma_norm(a, w[p + 'post_attention_layernorm.weight'], eps)
    h2 = gemma_norm(mid, w[p + 'pre_feedforward_layernorm.weight'], eps)
    m = (gelu_tanh(h2 @ w[p + 'mlp.gate_proj.weight'].T) * (h2 @ w[p + 'mlp.up_proj.weight'].T)) \
        @ w[p + 'mlp.down_proj.weight'].T
    return mid + gemma_norm(m, w[p + 'post_feedforward_layernorm.weight'], eps)


def gemma_embed(cfg, w, ids, dtype):
    # HF: embed * torch.tensor(hidden_size ** 0.5, dtype=the weights' dtype)
    normalizer = torch.tensor(cfg['hidden_size'] ** 0.5, dtype=dtype).to(torch.float64)
    return w['model.embed_tokens.weight'][torch.tensor(ids)] * normalizer


def gemma_final(cfg, w, x):
    logits = gemma_norm(x, w['model.norm.weight'], cfg['rms_norm_eps']) @ w['model.embed_tokens.weight'].T
    cap = cfg.get('final_logit_softcapping')
    return logits if cap is None else cap * torch.tanh(logits / cap)


# ---- writing ------------------------------------------------------------------------------------

def write_model(name, config, weights, dtype, tok, tok_config):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    stored = {k: v.to(dtype) for k, v in weights.items()}
    write_safetensors(os.path.join(folder, 'model.safetensors'), stored, {'format': 'pt'})
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(config, f, indent=2)
        f.write('\n')
    with open(os.path.join(folder, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump(tok_config, f, indent=2)
        f.write('\n')
    return {k: v.to(torch.float64) for k, v in stored.items()}


def write_reference(name, ids, logits, hidden, jac, cross, meta):
    """base.write_reference with the float64 results stored as float32 (relative rounding 6e-8,
    far below the tests' 1e-4; it halves the fixtures)."""
    write_safetensors(os.path.join(ROOT, f'{name}.reference.safetensors'), {
        'ids': torch.tensor(ids, dtype=torch.float32),
        'logits': logits.detach().to(torch.float32),
        'hidden': hidden.detach().to(torch.float32),
        'jacobians': jac.detach().to(torch.float32),
        'cross': cross.detach().to(torch.float32),
    })
    with open(os.path.join(ROOT, f'{name}.reference.json'), 'w') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')


def run_case(name, ids, prompt_ids, embed, block, final, L, cross_layer, cross_from, extra):
    logits, hidden, jac, cross = base.reference(block, final, embed(ids), L, cross_layer, cross_from)
    greedy_ids, margin = base.greedy(embed, block, final, L, prompt_ids, GREEDY_TOKENS)
    write_reference(name, ids, logits, hidden, jac, cross, {
        'text': TEXT, 'ids': ids, 'jacobian_position': len(ids) - 1,
        'cross_layer': cross_layer, 'cross_from': cross_from,
        'greedy_prompt': PROMPT, 'greedy_prompt_ids': prompt_ids, 'greedy_ids': greedy_ids,
        'greedy_min_margin': margin, **extra,
        'made_by': MADE_BY, 'seed': SEED})
    print(f'{name}: {len(ids)} tokens, logits |max| {logits.abs().max():.3f}, greedy margin {margin:.2e}',
          file=sys.stderr)


def main():
    g = torch.Generator().manual_seed(SEED)

    # ---- Qwen3: byte-level BPE, Qwen2's layout (no BOS; <|endoftext|> last) ----
    merges = base.learn_merges(CORPUS, base.N_MERGES)
    tok, vocab, eos = base.tokenizer_json('neo', merges)
    ids = base.bpe_encode(TEXT, vocab, merges)
    prompt_ids = base.bpe_encode(PROMPT, vocab, merges)
    cfg = {
        'architectures': ['Qwen3ForCausalLM'], 'model_type': 'qwen3',
        'hidden_size': 32, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 16,
        'num_hidden_layers': 2, 'intermediate_size': 64, 'hidden_act': 'silu',
        'max_position_embeddings': 128, 'rms_norm_eps': 1e-6, 'rope_theta': 1000.0,
        'rope_scaling': None, 'attention_bias': False, 'use_sliding_window': False,
        'sliding_window': None, 'max_window_layers': 2, 'tie_word_embeddings': True,
        'vocab_size': len(vocab), 'bos_token_id': None, 'eos_token_id': eos, 'torch_dtype': 'bfloat16',
    }
    w = write_model('qwen3', cfg, qwen3_weights(g, cfg), torch.bfloat16, tok,
                    {'bos_token': None, 'eos_token': '<|endoftext|>', 'add_bos_token': False,
                     'model_max_length': 128})
    run_case('qwen3', ids, prompt_ids,
             lambda t: w['model.embed_tokens.weight'][torch.tensor(t)],
             lambda l, x: qwen3_block(cfg, w, l, x), lambda x: qwen3_final(cfg, w, x),
             2, 1, len(ids) - 4, {})

    # ---- Gemma 2 and Gemma 3: SentencePiece-style BPE with byte fallback, <bos> prepended ----
    sp_merges = sp_learn(CORPUS, base.N_MERGES)
    sp_tok, sp_vocab = sp_tokenizer(sp_merges)
    ids = sp_encode(TEXT, sp_vocab, sp_merges)
    prompt_ids = sp_encode(PROMPT, sp_vocab, sp_merges)
    assert sp_vocab['<0xC3>'] in ids, 'the text should exercise byte fallback'
    gemma_tok_config = {'bos_token': '<bos>', 'eos_token': '<eos>', 'pad_token': '<pad>',
                        'unk_token': '<unk>', 'add_bos_token': True, 'add_eos_token': False,
                        'model_max_length': 128}
    common = {
        'hidden_size': 32, 'num_attention_heads': 4, 'num_key_value_heads': 2, 'head_dim': 16,
        'intermediate_size': 64, 'hidden_activation': 'gelu_pytorch_tanh',
        'max_position_embeddings': 128, 'rms_norm_eps': 1e-6, 'attention_bias': False,
        'tie_word_embeddings': True, 'vocab_size': len(sp_vocab),
        'pad_token_id': 0, 'eos_token_id': 1, 'bos_token_id': 2,
    }
    cases = [
        ('gemma2', torch.float32, 3, False, {
            'architectures': ['Gemma2ForCausalLM'], 'model_type': 'gemma2', **common,
            'num_hidden_layers': 3, 'rope_theta': 1000.0, 'query_pre_attn_scalar': 24,
            'sliding_window': 5, 'attn_logit_softcapping': 2.0, 'final_logit_softcapping': 3.0,
            'torch_dtype': 'float32'}),
        ('gemma3', torch.bfloat16, 4, True, {
            'architectures': ['Gemma3ForCausalLM'], 'model_type': 'gemma3_text', **common,
            'num_hidden_layers': 4, 'rope_theta': 10000.0, 'rope_local_base_freq': 100.0,
            'rope_scaling': None, 'query_pre_attn_scalar': 20, 'sliding_window': 6,
            'sliding_window_pattern': 3, 'attn_logit_softcapping': None,
            'final_logit_softcapping': None, 'torch_dtype': 'bfloat16'}),
    ]
    for name, dtype, L, qk_norm, cfg in cases:
        w = write_model(name, cfg, gemma_weights(g, cfg, qk_norm), dtype, sp_tok, gemma_tok_config)
        # Gemma 3's cross-token Jacobian: the global layer (2) from outside the local window;
        # Gemma 2's: a sliding layer (0) from inside its window.
        cross_layer, cross_from = (2, len(ids) - 9) if name == 'gemma3' else (0, len(ids) - 3)
        run_case(name, ids, prompt_ids,
                 lambda t, cfg=cfg, w=w, dtype=dtype: gemma_embed(cfg, w, t, dtype),
                 lambda l, x, cfg=cfg, w=w: gemma_block(cfg, w, l, x),
                 lambda x, cfg=cfg, w=w: gemma_final(cfg, w, x),
                 L, cross_layer, cross_from,
                 {'layer_types': gemma_layer_types(cfg),
                  'embed_scale': float(torch.tensor(cfg['hidden_size'] ** 0.5, dtype=dtype))})


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Float64 references for GPTNeoXForCausalLM (Pythia) and GPTNeoForCausalLM (TinyStories).

Writes, under test/fixtures/arch/, three small random-weight Hugging Face model folders and, beside
each, the float64 reference that test/model/arch-neox.test.ts compares lmdyn with:

  neox-parallel/    GPTNeoXForCausalLM, use_parallel_residual true, rotary_pct 0.25 (Pythia's
                    config keys), float16 weights (as Pythia ships), untied embed_out, padded vocab
  neox-sequential/  GPTNeoXForCausalLM, use_parallel_residual false, partial_rotary_factor 0.5 and
                    rope_theta (the newer config keys), float32 weights
  neo-local/        GPTNeoForCausalLM, attention_types [global, local, global] with window_size 4
                    (smaller than the sequence), tied lm_head (absent from the file, as TinyStories)

  neox-parallel-bin/  the neox-parallel weights saved by torch.save as pytorch_model.bin (no
                    safetensors; as many Pythia / TinyStories repos ship), with _metadata like
                    model.state_dict()
  torch-cases/      small torch.save files for the reader's edge cases: shared storages, a view
                    at a storage offset, bfloat16 and int64 (cases.bin, values in cases.json), a
                    non-contiguous tensor, the pre-1.6 legacy format, and a pickle that would
                    call os.system when unpickled by Python (never loaded by Python here)

  <name>.reference.safetensors  float64: ids, logits [n, vocab] at every position of the
                    teacher-forced text, hidden [L+1, n, d] (HF hidden_states before ln_f),
                    jacobians [L, d, d] = d f^l(X)_T / d x^{l-1}_T (block output minus its input,
                    other positions fixed) at T = n - 1, and cross [d, d] = d f^l(X)_T / d x^{l-1}_t1
                    for the layer and t1 named in <name>.reference.json.

The forward below is written from the conventions of transformers' modeling_gpt_neox.py and
modeling_gpt_neo.py (transformers itself is not used): GPT-NeoX views query_key_value's output as
[heads, 3 * head_size] and splits q | k | v per head, rotates the first rotary_ndims =
int(head_size * rotary_pct) dims of q and k by rotate_half with cos/sin of cat(freqs, freqs),
scales scores by head_size^-0.5, and adds attention and MLP to the same input when
use_parallel_residual; GPT-Neo has q/k/v without bias, out_proj with bias, no score scaling,
learned positions, and local layers that mask keys with i - j >= window_size.

The tokenizer is a byte-level BPE (GPT-2's byte-to-unicode map, merges learned here on CORPUS)
written as tokenizer.json; the NeoX one has Pythia's layout (<|endoftext|> = 0, <|padding|> = 1,
NFC normalizer), the Neo one GPT-2's (<|endoftext|> last).

Run: /usr/bin/python3 scripts/reference/neox_neo_fixtures.py   (Debian python3-torch; seed fixed)
"""

import json
import math
import os
import re
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'arch')
SEED = 20261207

CORPUS = (
    "Once upon a time, there was a little cat named Tom. Tom liked to play in the garden. "
    "One day, the little cat saw a big red ball. He ran to the ball and played with it all day. "
    "The sun was warm and the sky was blue. Tom was happy, and his mom was happy too."
)
TEXT = "Once upon a time, the little cat saw a big ball in the garden. He was happy."
PROMPT = "Once upon a time,"  # greedy continuation of GREEDY_TOKENS tokens from here
GREEDY_TOKENS = 12
N_MERGES = 40


# ---- byte-level BPE tokenizer -------------------------------------------------------------------

def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable unicode characters."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_CHARS = bytes_to_unicode()
# GPT-2's pre-tokenizer regex restricted to ASCII (CORPUS and TEXT are ASCII).
PRETOKEN = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+")


def words(text):
    return [''.join(BYTE_CHARS[b] for b in w.encode('utf-8')) for w in PRETOKEN.findall(text)]


def learn_merges(text, n):
    seqs = [list(w) for w in words(text)]
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


def bpe_encode(text, vocab, merges):
    rank = {m: i for i, m in enumerate(merges)}
    ids = []
    for w in words(text):
        s = list(w)
        while len(s) > 1:
            pairs = [(rank.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(s, s[1:]))]
            r, i = min(pairs)
            if r == math.inf:
                break
            s[i:i + 2] = [s[i] + s[i + 1]]
        ids.extend(vocab[t] for t in s)
    return ids


def tokenizer_json(style, merges):
    """(tokenizer.json dict, vocab, eos id) in Pythia's (neox) or GPT-2's (neo) layout."""
    base = [BYTE_CHARS[b] for b in sorted(BYTE_CHARS)]
    pieces = base + [a + b for a, b in merges]
    if style == 'neox':
        specials = ['<|endoftext|>', '<|padding|>']
        vocab = {t: i for i, t in enumerate(specials + pieces)}
        added = [(0, '<|endoftext|>'), (1, '<|padding|>')]
        normalizer = {'type': 'NFC'}
        eos = 0
    else:
        vocab = {t: i for i, t in enumerate(pieces)}
        vocab['<|endoftext|>'] = len(pieces)
        added = [(len(pieces), '<|endoftext|>')]
        normalizer = None
        eos = len(pieces)
    tok = {
        'version': '1.0',
        'truncation': None,
        'padding': None,
        'added_tokens': [
            {'id': i, 'content': c, 'single_word': False, 'lstrip': False, 'rstrip': False,
             'normalized': False, 'special': True}
            for i, c in added
        ],
        'normalizer': normalizer,
        'pre_tokenizer': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
        'post_processor': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
        'decoder': {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True},
        'model': {
            'type': 'BPE', 'dropout': None, 'unk_token': None, 'continuing_subword_prefix': None,
            'end_of_word_suffix': None, 'fuse_unk': False, 'byte_fallback': False,
            'vocab': vocab, 'merges': [f'{a} {b}' for a, b in merges],
        },
    }
    return tok, vocab, eos


# ---- safetensors --------------------------------------------------------------------------------

DTYPES = {torch.float16: ('F16', 'e'), torch.float32: ('F32', 'f'), torch.float64: ('F64', 'd')}


def write_safetensors(path, tensors, metadata=None):
    header = {}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        code, fmt = DTYPES[t.dtype]
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


# ---- random weights -----------------------------------------------------------------------------

def normal(g, *shape, std=1.0):
    return torch.randn(*shape, generator=g) * std


def layernorm_params(g, d):
    return 1 + normal(g, d, std=0.2), normal(g, d, std=0.2)


def neox_weights(g, cfg, vocab_size):
    d, hid, L = cfg['hidden_size'], cfg['intermediate_size'], cfg['num_hidden_layers']
    w = {'gpt_neox.embed_in.weight': normal(g, vocab_size, d)}
    for l in range(L):
        p = f'gpt_neox.layers.{l}.'
        w[p + 'input_layernorm.weight'], w[p + 'input_layernorm.bias'] = layernorm_params(g, d)
        w[p + 'post_attention_layernorm.weight'], w[p + 'post_attention_layernorm.bias'] = layernorm_params(g, d)
        w[p + 'attention.query_key_value.weight'] = normal(g, 3 * d, d, std=0.6 / math.sqrt(d))
        w[p + 'attention.query_key_value.bias'] = normal(g, 3 * d, std=0.2)
        w[p + 'attention.dense.weight'] = normal(g, d, d, std=1 / math.sqrt(d))
        w[p + 'attention.dense.bias'] = normal(g, d, std=0.1)
        w[p + 'mlp.dense_h_to_4h.weight'] = normal(g, hid, d, std=1 / math.sqrt(d))
        w[p + 'mlp.dense_h_to_4h.bias'] = normal(g, hid, std=0.2)
        w[p + 'mlp.dense_4h_to_h.weight'] = normal(g, d, hid, std=1 / math.sqrt(hid))
        w[p + 'mlp.dense_4h_to_h.bias'] = normal(g, d, std=0.1)
    w['gpt_neox.final_layer_norm.weight'], w['gpt_neox.final_layer_norm.bias'] = layernorm_params(g, d)
    w['embed_out.weight'] = normal(g, vocab_size, d, std=1 / math.sqrt(d))
    return w


def neo_weights(g, cfg):
    d, L = cfg['hidden_size'], cfg['num_layers']
    hid = cfg['intermediate_size']
    w = {
        'transformer.wte.weight': normal(g, cfg['vocab_size'], d),
        'transformer.wpe.weight': normal(g, cfg['max_position_embeddings'], d, std=0.5),
    }
    for l in range(L):
        p = f'transformer.h.{l}.'
        a = p + 'attn.attention.'
        w[p + 'ln_1.weight'], w[p + 'ln_1.bias'] = layernorm_params(g, d)
        # No 1/sqrt(head_dim) in the scores: small q/k weights keep the softmax away from one-hot.
        w[a + 'q_proj.weight'] = normal(g, d, d, std=0.35 / math.sqrt(d))
        w[a + 'k_proj.weight'] = normal(g, d, d, std=0.35 / math.sqrt(d))
        w[a + 'v_proj.weight'] = normal(g, d, d, std=1 / math.sqrt(d))
        w[a + 'out_proj.weight'] = normal(g, d, d, std=1 / math.sqrt(d))
        w[a + 'out_proj.bias'] = normal(g, d, std=0.1)
        w[p + 'ln_2.weight'], w[p + 'ln_2.bias'] = layernorm_params(g, d)
        w[p + 'mlp.c_fc.weight'] = normal(g, hid, d, std=1 / math.sqrt(d))
        w[p + 'mlp.c_fc.bias'] = normal(g, hid, std=0.2)
        w[p + 'mlp.c_proj.weight'] = normal(g, d, hid, std=1 / math.sqrt(hid))
        w[p + 'mlp.c_proj.bias'] = normal(g, d, std=0.1)
    w['transformer.ln_f.weight'], w['transformer.ln_f.bias'] = layernorm_params(g, d)
    return w


# ---- float64 forward, HF conventions ------------------------------------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def gelu_exact(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


def gelu_new(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def softmax_masked(scores, mask):
    scores = torch.where(mask, scores, torch.tensor(-math.inf))
    return torch.softmax(scores, dim=-1)


def neox_block(cfg, w, l, x):
    """One GPTNeoXLayer on x [n, d]; returns the layer output [n, d]."""
    n, d = x.shape
    H = cfg['num_attention_heads']
    hd = d // H
    rd = int(hd * cfg['_rotary_pct'])
    base = cfg['_rope_theta']
    eps = cfg.get('layer_norm_eps', 1e-5)
    p = f'gpt_neox.layers.{l}.'
    h1 = layer_norm(x, w[p + 'input_layernorm.weight'], w[p + 'input_layernorm.bias'], eps)
    qkv = h1 @ w[p + 'attention.query_key_value.weight'].T + w[p + 'attention.query_key_value.bias']
    qkv = qkv.view(n, H, 3 * hd).transpose(0, 1)  # [H, n, 3hd]
    q, k, v = qkv[..., :hd], qkv[..., hd:2 * hd], qkv[..., 2 * hd:]
    inv_freq = 1.0 / (base ** (torch.arange(0, rd, 2, dtype=torch.float64) / rd))
    freqs = torch.outer(torch.arange(n, dtype=torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    q = torch.cat((q[..., :rd] * cos + rotate_half(q[..., :rd]) * sin, q[..., rd:]), dim=-1)
    k = torch.cat((k[..., :rd] * cos + rotate_half(k[..., :rd]) * sin, k[..., rd:]), dim=-1)
    scores = (q @ k.transpose(-1, -2)) * hd ** -0.5
    causal = torch.tril(torch.ones(n, n, dtype=torch.bool))
    att = softmax_masked(scores, causal)
    z = (att @ v).transpose(0, 1).reshape(n, d)
    attn_out = z @ w[p + 'attention.dense.weight'].T + w[p + 'attention.dense.bias']
    act = gelu_exact if cfg.get('hidden_act', 'gelu') == 'gelu' else gelu_new

    def mlp(y):
        y = layer_norm(y, w[p + 'post_attention_layernorm.weight'], w[p + 'post_attention_layernorm.bias'], eps)
        y = act(y @ w[p + 'mlp.dense_h_to_4h.weight'].T + w[p + 'mlp.dense_h_to_4h.bias'])
        return y @ w[p + 'mlp.dense_4h_to_h.weight'].T + w[p + 'mlp.dense_4h_to_h.bias']

    if cfg.get('use_parallel_residual', True):
        return mlp(x) + attn_out + x
    mid = attn_out + x
    return mlp(mid) + mid


def neox_final(cfg, w, x):
    eps = cfg.get('layer_norm_eps', 1e-5)
    h = layer_norm(x, w['gpt_neox.final_layer_norm.weight'], w['gpt_neox.final_layer_norm.bias'], eps)
    return h @ w['embed_out.weight'].T


def neo_layer_types(cfg):
    out = []
    for kinds, count in cfg['attention_types']:
        for _ in range(count):
            out.extend(kinds)
    return out


def neo_block(cfg, w, l, x):
    """One GPTNeoBlock on x [n, d]."""
    n, d = x.shape
    H = cfg['num_heads']
    hd = d // H
    eps = cfg['layer_norm_epsilon']
    p = f'transformer.h.{l}.'
    a = p + 'attn.attention.'
    h1 = layer_norm(x, w[p + 'ln_1.weight'], w[p + 'ln_1.bias'], eps)
    q = (h1 @ w[a + 'q_proj.weight'].T).view(n, H, hd).transpose(0, 1)
    k = (h1 @ w[a + 'k_proj.weight'].T).view(n, H, hd).transpose(0, 1)
    v = (h1 @ w[a + 'v_proj.weight'].T).view(n, H, hd).transpose(0, 1)
    scores = q @ k.transpose(-1, -2)  # GPT-Neo: no 1/sqrt(hd)
    mask = torch.tril(torch.ones(n, n, dtype=torch.bool))
    if neo_layer_types(cfg)[l] == 'local':
        mask = mask ^ torch.tril(mask, -cfg['window_size'])
    att = softmax_masked(scores, mask)
    z = (att @ v).transpose(0, 1).reshape(n, d)
    mid = z @ w[a + 'out_proj.weight'].T + w[a + 'out_proj.bias'] + x
    h2 = layer_norm(mid, w[p + 'ln_2.weight'], w[p + 'ln_2.bias'], eps)
    act = gelu_new if cfg['activation_function'] == 'gelu_new' else gelu_exact
    m = act(h2 @ w[p + 'mlp.c_fc.weight'].T + w[p + 'mlp.c_fc.bias'])
    return m @ w[p + 'mlp.c_proj.weight'].T + w[p + 'mlp.c_proj.bias'] + mid


def neo_embed(cfg, w, ids):
    return w['transformer.wte.weight'][ids] + w['transformer.wpe.weight'][torch.arange(len(ids))]


def neo_final(cfg, w, x):
    h = layer_norm(x, w['transformer.ln_f.weight'], w['transformer.ln_f.bias'], cfg['layer_norm_epsilon'])
    return h @ w['transformer.wte.weight'].T  # tied


# ---- references ---------------------------------------------------------------------------------

def reference(block, final, x0, n_layers, cross_layer, cross_from):
    hidden = [x0]
    for l in range(n_layers):
        hidden.append(block(l, hidden[-1]))
    logits = final(hidden[-1])
    T = x0.shape[0] - 1

    def branch(l, t):
        def f(xt):
            x = hidden[l].clone()
            x[t] = xt
            out = block(l, x)[T]
            return out - xt if t == T else out
        return f

    jac = torch.stack([
        torch.autograd.functional.jacobian(branch(l, T), hidden[l][T].clone())
        for l in range(n_layers)
    ])
    cross = torch.autograd.functional.jacobian(branch(cross_layer, cross_from), hidden[cross_layer][cross_from].clone())
    return logits, torch.stack(hidden), jac, cross


def greedy(embed, block, final, n_layers, prompt_ids, steps):
    """Greedy continuation by full float64 forwards (no cache), and the smallest top-1 margin."""
    ids = list(prompt_ids)
    margin = math.inf
    for _ in range(steps):
        x = embed(ids)
        for l in range(n_layers):
            x = block(l, x)
        logits = final(x)[-1]
        top = torch.topk(logits, 2).values
        margin = min(margin, (top[0] - top[1]).item())
        ids.append(int(torch.argmax(logits)))
    return ids[len(prompt_ids):], margin


def write_model(name, config, weights, storage_dtype, tok, eos):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    stored = {k: v.to(storage_dtype) for k, v in weights.items()}
    write_safetensors(os.path.join(folder, 'model.safetensors'), stored, {'format': 'pt'})
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump({k: v for k, v in config.items() if not k.startswith('_')}, f, indent=2)
        f.write('\n')
    with open(os.path.join(folder, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    eos_text = '<|endoftext|>'
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump({'bos_token': eos_text, 'eos_token': eos_text, 'add_bos_token': False,
                   'model_max_length': config.get('max_position_embeddings', 2048)}, f, indent=2)
        f.write('\n')
    # The reference uses the stored values exactly (float16 or float32 rounded, then float64).
    return {k: v.to(torch.float64) for k, v in stored.items()}


def write_torch_bin(name, like, weights):
    """HF folder `name` with the weights of `like` saved by torch.save (pytorch_model.bin)."""
    import collections
    import shutil
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    for f in ('config.json', 'tokenizer.json', 'tokenizer_config.json'):
        shutil.copy(os.path.join(ROOT, like, f), os.path.join(folder, f))
    sd = collections.OrderedDict((k, v.clone()) for k, v in weights.items())
    sd._metadata = collections.OrderedDict([('', {'version': 1})])  # as model.state_dict() has
    torch.save(sd, os.path.join(folder, 'pytorch_model.bin'))


class CallsOsSystem:
    """Unpickled by Python, this would run a shell command; lmdyn must refuse it unrun."""

    def __reduce__(self):
        return (os.system, ('echo this must never run',))


def write_torch_cases():
    import collections
    folder = os.path.join(ROOT, 'torch-cases')
    os.makedirs(folder, exist_ok=True)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) / 8
    sd = collections.OrderedDict()
    sd['shared.a'] = base
    sd['shared.b'] = base  # the same storage twice (tied weights)
    sd['view'] = base[1:3]  # rows 1..2: storage offset 6, contiguous
    sd['half'] = (torch.arange(5, dtype=torch.float32) - 2).half()
    sd['bf16'] = torch.tensor([1.5, -2.25, 3.0]).bfloat16()
    sd['steps'] = torch.tensor([7, -3], dtype=torch.int64)
    torch.save(sd, os.path.join(folder, 'cases.bin'))
    with open(os.path.join(folder, 'cases.json'), 'w') as f:
        json.dump({k: {'shape': list(v.shape), 'values': v.to(torch.float64).reshape(-1).tolist()}
                   for k, v in sd.items()}, f, indent=1)
        f.write('\n')
    torch.save({'t': base.t()}, os.path.join(folder, 'noncontiguous.bin'))
    torch.save({'t': base}, os.path.join(folder, 'legacy.bin'), _use_new_zipfile_serialization=False)
    torch.save({'t': base, 'x': CallsOsSystem()}, os.path.join(folder, 'calls-os-system.bin'))


def write_reference(name, ids, logits, hidden, jac, cross, meta):
    write_safetensors(os.path.join(ROOT, f'{name}.reference.safetensors'), {
        'ids': torch.tensor(ids, dtype=torch.float64),
        'logits': logits.detach(),
        'hidden': hidden.detach(),
        'jacobians': jac.detach(),
        'cross': cross.detach(),
    })
    with open(os.path.join(ROOT, f'{name}.reference.json'), 'w') as f:
        json.dump(meta, f, indent=2)
        f.write('\n')


def main():
    os.makedirs(ROOT, exist_ok=True)
    g = torch.Generator().manual_seed(SEED)
    merges = learn_merges(CORPUS, N_MERGES)

    # GPT-NeoX, Pythia layout: model vocab padded beyond the tokenizer's (Pythia: 50304 vs 50277).
    tok_x, vocab_x, eos_x = tokenizer_json('neox', merges)
    ids_x = bpe_encode(TEXT, vocab_x, merges)
    neox_vocab = 320
    assert len(vocab_x) <= neox_vocab
    neox_cases = [
        ('neox-parallel', torch.float16, 3, {
            'rotary_pct': 0.25, 'rotary_emb_base': 10000, 'use_parallel_residual': True,
            '_rotary_pct': 0.25, '_rope_theta': 10000}),
        ('neox-sequential', torch.float32, 2, {
            'partial_rotary_factor': 0.5, 'rope_theta': 500.0, 'use_parallel_residual': False,
            '_rotary_pct': 0.5, '_rope_theta': 500.0}),
    ]
    for name, dtype, L, extra in neox_cases:
        cfg = {
            'architectures': ['GPTNeoXForCausalLM'], 'model_type': 'gpt_neox',
            'hidden_size': 32, 'num_attention_heads': 2, 'num_hidden_layers': L,
            'intermediate_size': 128, 'hidden_act': 'gelu', 'max_position_embeddings': 64,
            'layer_norm_eps': 1e-5, 'vocab_size': neox_vocab, 'tie_word_embeddings': False,
            'bos_token_id': eos_x, 'eos_token_id': eos_x,
            'torch_dtype': 'float16' if dtype == torch.float16 else 'float32',
            **extra,
        }
        raw = neox_weights(g, cfg, neox_vocab)
        w = write_model(name, cfg, raw, dtype, tok_x, eos_x)
        if name == 'neox-parallel':
            write_torch_bin('neox-parallel-bin', name, {k: v.to(dtype) for k, v in raw.items()})
        x0 = w['gpt_neox.embed_in.weight'][torch.tensor(ids_x)]
        cross_layer, cross_from = L - 1, len(ids_x) - 3
        block = lambda l, x, cfg=cfg, w=w: neox_block(cfg, w, l, x)  # noqa: E731
        final = lambda x, cfg=cfg, w=w: neox_final(cfg, w, x)  # noqa: E731
        embed = lambda ids, w=w: w['gpt_neox.embed_in.weight'][torch.tensor(ids)]  # noqa: E731
        logits, hidden, jac, cross = reference(block, final, x0, L, cross_layer, cross_from)
        prompt_ids = bpe_encode(PROMPT, vocab_x, merges)
        greedy_ids, margin = greedy(embed, block, final, L, prompt_ids, GREEDY_TOKENS)
        write_reference(name, ids_x, logits, hidden, jac, cross, {
            'text': TEXT, 'ids': ids_x, 'jacobian_position': len(ids_x) - 1,
            'cross_layer': cross_layer, 'cross_from': cross_from,
            'greedy_prompt': PROMPT, 'greedy_prompt_ids': prompt_ids, 'greedy_ids': greedy_ids,
            'greedy_min_margin': margin,
            'made_by': 'scripts/reference/neox_neo_fixtures.py', 'seed': SEED})

    # GPT-Neo, TinyStories layout: tied embeddings, GPT-2 tokenizer layout.
    tok_o, vocab_o, eos_o = tokenizer_json('neo', merges)
    ids_o = bpe_encode(TEXT, vocab_o, merges)
    cfg = {
        'architectures': ['GPTNeoForCausalLM'], 'model_type': 'gpt_neo',
        'hidden_size': 32, 'num_heads': 4, 'num_layers': 3, 'intermediate_size': 64,
        'attention_types': [[['global', 'local'], 1], [['global'], 1]], 'window_size': 4,
        'activation_function': 'gelu_new', 'layer_norm_epsilon': 1e-5,
        'max_position_embeddings': 64, 'vocab_size': len(vocab_o),
        'bos_token_id': eos_o, 'eos_token_id': eos_o, 'torch_dtype': 'float32',
    }
    w = write_model('neo-local', cfg, neo_weights(g, cfg), torch.float32, tok_o, eos_o)
    ids_t = torch.tensor(ids_o)
    # The local layer (1) from a position just inside its window (T - 3) and its key/value path.
    cross_layer, cross_from = 1, len(ids_o) - 3
    block = lambda l, x: neo_block(cfg, w, l, x)  # noqa: E731
    final = lambda x: neo_final(cfg, w, x)  # noqa: E731
    embed = lambda ids: neo_embed(cfg, w, torch.tensor(ids))  # noqa: E731
    logits, hidden, jac, cross = reference(block, final, embed(ids_o), 3, cross_layer, cross_from)
    prompt_ids = bpe_encode(PROMPT, vocab_o, merges)
    greedy_ids, margin = greedy(embed, block, final, 3, prompt_ids, GREEDY_TOKENS)
    write_reference('neo-local', ids_o, logits, hidden, jac, cross, {
        'text': TEXT, 'ids': ids_o, 'jacobian_position': len(ids_o) - 1,
        'cross_layer': cross_layer, 'cross_from': cross_from,
        'greedy_prompt': PROMPT, 'greedy_prompt_ids': prompt_ids, 'greedy_ids': greedy_ids,
        'greedy_min_margin': margin,
        'made_by': 'scripts/reference/neox_neo_fixtures.py', 'seed': SEED})
    write_torch_cases()
    print(f'{len(ids_x)} tokens; wrote {ROOT}', file=sys.stderr)


if __name__ == '__main__':
    main()

#!/usr/bin/python3
"""Float64 references for scaled RoPE (Llama 3.x / SmolLM2), Mistral's sliding window and Phi-3.

Writes, under test/fixtures/arch-rope/, small random-weight Hugging Face model folders and, beside
each, the float64 reference that test/model/arch-rope.test.ts compares lmdyn with:

  llama-rope-llama3/   LlamaForCausalLM, rope_scaling {rope_type: llama3, factor 4, low 1, high 4,
                       original 128} (the 8 wavelengths of head_dim 16 fall in all three bands),
                       explicit head_dim 16 (4 heads, hidden 32), GQA 4/2, tied embeddings
  llama-rope-linear/   LlamaForCausalLM, rope_scaling {type: linear, factor 2} (the older "type"
                       key), rope_theta 500, untied lm_head
  llama-rope-dynamic/  LlamaForCausalLM, rope_scaling {rope_type: dynamic, factor 2} with
                       max_position_embeddings 16, shorter than the text, so the NTK base is
                       recomputed; also the logits of the text fed one token at a time through a
                       KV cache (each step's own base, the cached keys keeping theirs)
  mistral-window/      MistralForCausalLM, sliding_window 5 (shorter than the text), GQA
  phi3/                Phi3ForCausalLM, fused qkv_proj and gate_up_proj, sliding_window 6
  phi3-longrope/       Phi3ForCausalLM as Phi-4-mini: partial_rotary_factor 0.75 (12 of 16 dims
                       rotate), rope_scaling {type: longrope, short_factor, long_factor} with
                       original_max_position_embeddings 16 < the text, tied embeddings

  <name>.reference.safetensors  computed in float64: ids, logits [n, vocab] at every position of
                       the teacher-forced text (one forward over the whole text; stored as float32,
                       a rounding of 6e-8 relative, to keep the files small), hidden [L+1, n, d]
                       (the residual stream before the final norm), jacobians [L, d, d] =
                       d f^l(X)_T / d x^{l-1}_T at T = n - 1 (block output minus its input, other
                       positions fixed), cross [d, d] = d f^l(X)_T / d x^{l-1}_t1 (layer and t1 in
                       the .json), and for llama-rope-dynamic and phi3-longrope step_logits [n, vocab] (float32 as
                       logits): the text fed one token per call through the KV cache.
  frequencies.json     inv_freq of real models' settings (Llama 3.1's llama3 rule, dynamic NTK at
                       twice the context) for a unit test of model/rope.ts.
  <name>.reference.json  text, ids, greedy prompt and ids (generation as transformers' generate
                       does it: prefill, then one token at a time with a KV cache; Phi-3's
                       prepare_inputs_for_generation drops the cache once, when the sequence first
                       passes original_max_position_embeddings), and how much the scaling moves the
                       logits (unscaled_logits_max_diff: the same weights with plain RoPE).

The forward is written from the conventions of transformers' modeling_llama.py,
modeling_mistral.py, modeling_phi3.py and modeling_rope_utils.py (transformers is not used):
RMSNorm x * rsqrt(mean(x^2) + eps) * w; q/k/v projections (Phi-3: one qkv_proj, rows q | k | v);
rotate_half RoPE on the first int(head_dim * partial_rotary_factor) dims with cos/sin of
cat(freqs, freqs) times the attention scaling; GQA by repeating kv heads; scores * head_dim^-0.5;
the causal mask and, with sliding_window W, kv_idx > q_idx - W (masking_utils.sliding_window_overlay);
silu(gate) * up (Phi-3: gate, up = gate_up_proj(x).chunk(2)); residual adds. inv_freq per rope type
as modeling_rope_utils.py: linear f/factor; llama3's band rule; dynamic NTK's base
theta * ((factor * seq_len / max_pos) - (factor - 1)) ** (dim / (dim - 2)) when seq_len > max_pos,
seq_len = max(position_ids) + 1 of the forward call (dynamic_rope_update); longrope's
1 / (ext * theta ** (2i / dim)) with ext = long_factor when seq_len > original, else short_factor,
and cos/sin * sqrt(1 + ln(max_pos / original) / ln(original)).

Run: /usr/bin/python3 scripts/reference/rope_fixtures.py   (Debian python3-torch; seed fixed)
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import neox_neo_fixtures as base  # noqa: E402  (tokenizer, safetensors writer, helpers)

torch.set_default_dtype(torch.float64)
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'test', 'fixtures', 'arch-rope')
SEED = 20261208

TEXT = "Once upon a time, the little cat saw a big ball."
PROMPT = "Once upon a time,"
GREEDY_TOKENS = 16


# ---- RoPE frequencies (modeling_rope_utils.py) -------------------------------------------------

def rope_dim(cfg):
    hd = cfg.get('head_dim') or cfg['hidden_size'] // cfg['num_attention_heads']
    return int(hd * cfg.get('partial_rotary_factor', 1.0))


def rope_scaling(cfg):
    rs = cfg.get('rope_scaling')
    if not rs:
        return None, 'default'
    t = rs.get('rope_type', rs.get('type', 'default'))
    if cfg['architectures'][0] == 'Phi3ForCausalLM' and t in ('su', 'yarn'):
        t = 'longrope'
    return rs, t


def inv_freq_and_scaling(cfg, seq_len):
    """(inv_freq [dim/2], attention_scaling) for a forward call whose max position + 1 is seq_len."""
    dim = rope_dim(cfg)
    theta = cfg.get('rope_theta', 10000.0)
    rs, t = rope_scaling(cfg)
    expo = torch.arange(0, dim, 2, dtype=torch.float64) / dim
    plain = 1.0 / (theta ** expo)
    if t == 'default':
        return plain, 1.0
    if t == 'linear':
        return plain / rs['factor'], 1.0
    if t == 'dynamic':
        max_pos = cfg['max_position_embeddings']
        L = max(seq_len, max_pos)
        b = theta * ((rs['factor'] * L / max_pos) - (rs['factor'] - 1)) ** (dim / (dim - 2))
        return 1.0 / (b ** expo), 1.0
    if t == 'llama3':
        factor, low, high = rs['factor'], rs['low_freq_factor'], rs['high_freq_factor']
        old = rs['original_max_position_embeddings']
        low_wavelen, high_wavelen = old / low, old / high
        wavelen = 2 * math.pi / plain
        f = torch.where(wavelen > low_wavelen, plain / factor, plain)
        smooth = (old / wavelen - low) / (high - low)
        smoothed = (1 - smooth) * f / factor + smooth * f
        medium = ~(wavelen < high_wavelen) * ~(wavelen > low_wavelen)
        return torch.where(medium, smoothed, f), 1.0
    if t == 'longrope':
        original = cfg['original_max_position_embeddings']
        factor = cfg['max_position_embeddings'] / original
        att = rs.get('attention_factor') or (1.0 if factor <= 1 else math.sqrt(1 + math.log(factor) / math.log(original)))
        ext = torch.tensor(rs['long_factor'] if seq_len > original else rs['short_factor'], dtype=torch.float64)
        return 1.0 / (ext * theta ** expo), att
    raise ValueError(t)


# ---- float64 forward, HF conventions ------------------------------------------------------------

def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def project_qkv(cfg, w, p, h):
    H, Hk = cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = cfg.get('head_dim') or cfg['hidden_size'] // H
    if cfg['architectures'][0] == 'Phi3ForCausalLM':
        qkv = h @ w[p + 'self_attn.qkv_proj.weight'].T
        q, k, v = qkv[:, :H * hd], qkv[:, H * hd:(H + Hk) * hd], qkv[:, (H + Hk) * hd:]
    else:
        q = h @ w[p + 'self_attn.q_proj.weight'].T
        k = h @ w[p + 'self_attn.k_proj.weight'].T
        v = h @ w[p + 'self_attn.v_proj.weight'].T
    m = h.shape[0]
    return (q.view(m, H, hd).transpose(0, 1), k.view(m, Hk, hd).transpose(0, 1),
            v.view(m, Hk, hd).transpose(0, 1))


def rotate(x, pos, inv_freq, att):
    rd = 2 * inv_freq.shape[0]
    freqs = torch.outer(pos.to(torch.float64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos() * att, emb.sin() * att
    return torch.cat((x[..., :rd] * cos + base.rotate_half(x[..., :rd]) * sin, x[..., rd:]), dim=-1)


def mlp(cfg, w, p, h):
    if cfg['architectures'][0] == 'Phi3ForCausalLM':
        gate, up = (h @ w[p + 'mlp.gate_up_proj.weight'].T).chunk(2, dim=-1)
    else:
        gate, up = h @ w[p + 'mlp.gate_proj.weight'].T, h @ w[p + 'mlp.up_proj.weight'].T
    return (up * torch.nn.functional.silu(gate)) @ w[p + 'mlp.down_proj.weight'].T


def block(cfg, w, l, x, start, cache, seq_len):
    """Decoder layer l on the rows x [m, d] at positions start..start+m-1; cache[l] = (K, V) of the
    earlier positions (rotated when they were computed), extended here. Returns the layer output."""
    H, Hk = cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = cfg.get('head_dim') or cfg['hidden_size'] // H
    eps = cfg['rms_norm_eps']
    p = f'model.layers.{l}.'
    m = x.shape[0]
    pos = torch.arange(start, start + m)
    q, k, v = project_qkv(cfg, w, p, rms_norm(x, w[p + 'input_layernorm.weight'], eps))
    inv_freq, att = inv_freq_and_scaling(cfg, seq_len)
    q, k = rotate(q, pos, inv_freq, att), rotate(k, pos, inv_freq, att)
    K, V = cache.get(l, (k[:, :0], v[:, :0]))
    K, V = torch.cat((K, k), dim=1), torch.cat((V, v), dim=1)
    cache[l] = (K, V)
    K, V = K.repeat_interleave(H // Hk, dim=0), V.repeat_interleave(H // Hk, dim=0)
    scores = (q @ K.transpose(-1, -2)) * hd ** -0.5
    kv = torch.arange(K.shape[1])[None, :]
    qi = pos[:, None]
    mask = kv <= qi
    W = cfg.get('sliding_window')
    if W is not None:
        mask = mask & (kv > qi - W)
    z = (base.softmax_masked(scores, mask) @ V).transpose(0, 1).reshape(m, H * hd)
    mid = x + z @ w[p + 'self_attn.o_proj.weight'].T
    return mid + mlp(cfg, w, p, rms_norm(mid, w[p + 'post_attention_layernorm.weight'], eps))


def final(cfg, w, x):
    h = rms_norm(x, w['model.norm.weight'], cfg['rms_norm_eps'])
    return h @ w.get('lm_head.weight', w['model.embed_tokens.weight']).T


def forward(cfg, w, ids, start=0, cache=None):
    """One forward call over `ids` at positions start.. (HF: seq_len = start + len(ids)); returns
    (logits [m, vocab], hidden list [L+1] of [m, d])."""
    cache = {} if cache is None else cache
    x = w['model.embed_tokens.weight'][torch.tensor(ids)]
    hidden = [x]
    for l in range(cfg['num_hidden_layers']):
        x = block(cfg, w, l, x, start, cache, start + len(ids))
        hidden.append(x)
    return final(cfg, w, x), hidden


def jacobians(cfg, w, hidden, cross_layer, cross_from):
    n = hidden[0].shape[0]
    T = n - 1

    def branch(l, t):
        def f(xt):
            x = hidden[l].clone()
            x[t] = xt
            out = block(cfg, w, l, x, 0, {}, n)[T]
            return out - xt if t == T else out
        return f

    jac = torch.stack([
        torch.autograd.functional.jacobian(branch(l, T), hidden[l][T].clone())
        for l in range(cfg['num_hidden_layers'])
    ])
    cross = torch.autograd.functional.jacobian(branch(cross_layer, cross_from), hidden[cross_layer][cross_from].clone())
    return jac, cross


def phi3_drops_cache(cfg, cached, total):
    """Phi3ForCausalLM.prepare_inputs_for_generation: recompute everything when the input first
    reaches original_max_position_embeddings + 1 tokens with at most that many cached."""
    if cfg['architectures'][0] != 'Phi3ForCausalLM' or not cfg.get('rope_scaling'):
        return False
    original = cfg['original_max_position_embeddings']
    return cached > 0 and total >= original + 1 and cached <= original


def stepwise_logits(cfg, w, ids):
    """The text fed one token per forward call through the KV cache, as generate feeds it."""
    cache, cached, rows = {}, 0, []
    for t in range(len(ids)):
        if phi3_drops_cache(cfg, cached, t + 1):
            cache, cached = {}, 0
        rows.append(forward(cfg, w, ids[cached:t + 1], cached, cache)[0][-1])
        cached = t + 1
    return torch.stack(rows)


def generate(cfg, w, prompt_ids, steps):
    """Greedy decoding as transformers' generate: prefill, then one token per call through the KV
    cache; Phi-3 with rope_scaling drops the cache when the input first reaches
    original_max_position_embeddings + 1 tokens with at most original cached
    (Phi3ForCausalLM.prepare_inputs_for_generation). Returns ids and the smallest top-1 margin."""
    ids = list(prompt_ids)
    cache = {}
    cached = 0
    margin = math.inf
    for _ in range(steps):
        if phi3_drops_cache(cfg, cached, len(ids)):
            cache, cached = {}, 0
        logits, _ = forward(cfg, w, ids[cached:], cached, cache)
        cached = len(ids)
        top = torch.topk(logits[-1], 2).values
        margin = min(margin, (top[0] - top[1]).item())
        ids.append(int(torch.argmax(logits[-1])))
    return ids[len(prompt_ids):], margin


# ---- random weights -----------------------------------------------------------------------------

def weights(g, cfg):
    d, hid, L = cfg['hidden_size'], cfg['intermediate_size'], cfg['num_hidden_layers']
    H, Hk = cfg['num_attention_heads'], cfg['num_key_value_heads']
    hd = cfg.get('head_dim') or d // H
    phi3 = cfg['architectures'][0] == 'Phi3ForCausalLM'
    n = base.normal
    # Tied embeddings make a random model repeat its input token; a small embedding lets the
    # blocks, not the token itself, decide the next one.
    w = {'model.embed_tokens.weight': n(g, cfg['vocab_size'], d, std=0.3 if cfg['tie_word_embeddings'] else 1.0)}
    for l in range(L):
        p = f'model.layers.{l}.'
        w[p + 'input_layernorm.weight'] = 1 + n(g, d, std=0.2)
        w[p + 'post_attention_layernorm.weight'] = 1 + n(g, d, std=0.2)
        # q and k larger than 1/sqrt(d) so that the rotation angles matter to the softmax.
        q, k = n(g, H * hd, d, std=1.5 / math.sqrt(d)), n(g, Hk * hd, d, std=1.5 / math.sqrt(d))
        v = n(g, Hk * hd, d, std=1 / math.sqrt(d))
        if phi3:
            w[p + 'self_attn.qkv_proj.weight'] = torch.cat((q, k, v))
        else:
            w[p + 'self_attn.q_proj.weight'], w[p + 'self_attn.k_proj.weight'], w[p + 'self_attn.v_proj.weight'] = q, k, v
        w[p + 'self_attn.o_proj.weight'] = n(g, d, H * hd, std=2 / math.sqrt(H * hd))
        gate, up = n(g, hid, d, std=1 / math.sqrt(d)), n(g, hid, d, std=1 / math.sqrt(d))
        if phi3:
            w[p + 'mlp.gate_up_proj.weight'] = torch.cat((gate, up))
        else:
            w[p + 'mlp.gate_proj.weight'], w[p + 'mlp.up_proj.weight'] = gate, up
        w[p + 'mlp.down_proj.weight'] = n(g, d, hid, std=2 / math.sqrt(hid))
    w['model.norm.weight'] = 1 + n(g, d, std=0.2)
    if not cfg['tie_word_embeddings']:
        w['lm_head.weight'] = n(g, cfg['vocab_size'], d, std=1 / math.sqrt(d))
    return w


def write_folder(name, cfg, w, tok, eos):
    folder = os.path.join(ROOT, name)
    os.makedirs(folder, exist_ok=True)
    stored = {k: v.to(torch.float32) for k, v in w.items()}
    base.write_safetensors(os.path.join(folder, 'model.safetensors'), stored, {'format': 'pt'})
    with open(os.path.join(folder, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=2)
        f.write('\n')
    with open(os.path.join(folder, 'tokenizer.json'), 'w') as f:
        json.dump(tok, f, ensure_ascii=False)
    eos_text = '<|endoftext|>'
    with open(os.path.join(folder, 'tokenizer_config.json'), 'w') as f:
        json.dump({'bos_token': eos_text, 'eos_token': eos_text, 'add_bos_token': False,
                   'model_max_length': cfg['max_position_embeddings']}, f, indent=2)
        f.write('\n')
    return {k: v.to(torch.float64) for k, v in stored.items()}  # the stored values, exactly


CASES = [
    ('llama-rope-llama3', 'LlamaForCausalLM', {
        'hidden_size': 16, 'num_attention_heads': 2, 'num_key_value_heads': 1, 'head_dim': 16,
        'num_hidden_layers': 2, 'intermediate_size': 32, 'max_position_embeddings': 512,
        'rope_theta': 10000.0, 'tie_word_embeddings': True,
        'rope_scaling': {'rope_type': 'llama3', 'factor': 4.0, 'low_freq_factor': 1.0,
                         'high_freq_factor': 4.0, 'original_max_position_embeddings': 128}}),
    ('llama-rope-linear', 'LlamaForCausalLM', {
        'hidden_size': 16, 'num_attention_heads': 2, 'num_key_value_heads': 2,
        'num_hidden_layers': 2, 'intermediate_size': 32, 'max_position_embeddings': 128,
        'rope_theta': 500.0, 'tie_word_embeddings': False,
        'rope_scaling': {'type': 'linear', 'factor': 2.0}}),
    ('llama-rope-dynamic', 'LlamaForCausalLM', {
        'hidden_size': 16, 'num_attention_heads': 2, 'num_key_value_heads': 1,
        'num_hidden_layers': 2, 'intermediate_size': 32, 'max_position_embeddings': 16,
        'rope_theta': 100.0, 'tie_word_embeddings': True,
        'rope_scaling': {'rope_type': 'dynamic', 'factor': 2.0}}),
    ('mistral-window', 'MistralForCausalLM', {
        'hidden_size': 16, 'num_attention_heads': 4, 'num_key_value_heads': 2,
        'num_hidden_layers': 3, 'intermediate_size': 32, 'max_position_embeddings': 256,
        'rope_theta': 10000.0, 'tie_word_embeddings': False, 'sliding_window': 5}),
    ('phi3', 'Phi3ForCausalLM', {
        'hidden_size': 16, 'num_attention_heads': 2, 'num_key_value_heads': 2,
        'num_hidden_layers': 2, 'intermediate_size': 32, 'max_position_embeddings': 128,
        'original_max_position_embeddings': 128, 'rope_theta': 10000.0,
        'tie_word_embeddings': False, 'sliding_window': 6, 'rope_scaling': None}),
    ('phi3-longrope', 'Phi3ForCausalLM', {
        'hidden_size': 16, 'num_attention_heads': 2, 'num_key_value_heads': 1, 'head_dim': 16,
        'num_hidden_layers': 2, 'intermediate_size': 32, 'max_position_embeddings': 64,
        'original_max_position_embeddings': 16, 'rope_theta': 1000.0, 'partial_rotary_factor': 0.75,
        'tie_word_embeddings': True, 'sliding_window': 64,
        'rope_scaling': {'type': 'longrope',
                         'short_factor': [1.0, 1.1, 1.3, 1.6, 2.0, 2.5],
                         'long_factor': [1.0, 1.5, 2.5, 4.0, 6.0, 9.0]}}),
]


def real_frequencies():
    llama31 = {'architectures': ['LlamaForCausalLM'], 'hidden_size': 4096, 'num_attention_heads': 32,
               'rope_theta': 500000.0, 'max_position_embeddings': 131072,
               'rope_scaling': {'rope_type': 'llama3', 'factor': 8.0, 'low_freq_factor': 1.0,
                                'high_freq_factor': 4.0, 'original_max_position_embeddings': 8192}}
    dynamic = {'architectures': ['LlamaForCausalLM'], 'hidden_size': 2048, 'num_attention_heads': 32,
               'rope_theta': 10000.0, 'max_position_embeddings': 2048,
               'rope_scaling': {'rope_type': 'dynamic', 'factor': 2.0}}
    return {
        'llama3.1': {'config': llama31, 'seq_len': 100, 'inv_freq': inv_freq_and_scaling(llama31, 100)[0].tolist()},
        'dynamic@2048': {'config': dynamic, 'seq_len': 2048, 'inv_freq': inv_freq_and_scaling(dynamic, 2048)[0].tolist()},
        'dynamic@4096': {'config': dynamic, 'seq_len': 4096, 'inv_freq': inv_freq_and_scaling(dynamic, 4096)[0].tolist()},
    }


def main():
    os.makedirs(ROOT, exist_ok=True)
    with open(os.path.join(ROOT, 'frequencies.json'), 'w') as f:
        json.dump(real_frequencies(), f, indent=1)
        f.write('\n')
    g = torch.Generator().manual_seed(SEED)
    merges = base.learn_merges(base.CORPUS, base.N_MERGES)
    tok, vocab, eos = base.tokenizer_json('neo', merges)
    ids = base.bpe_encode(TEXT, vocab, merges)
    prompt_ids = base.bpe_encode(PROMPT, vocab, merges)
    n = len(ids)
    for name, arch, extra in CASES:
        cfg = {
            'architectures': [arch], 'model_type': {'LlamaForCausalLM': 'llama', 'MistralForCausalLM': 'mistral',
                                                    'Phi3ForCausalLM': 'phi3'}[arch],
            'hidden_act': 'silu', 'rms_norm_eps': 1e-5, 'vocab_size': len(vocab),
            'bos_token_id': eos, 'eos_token_id': eos, 'torch_dtype': 'float32', **extra,
        }
        w = write_folder(name, cfg, weights(g, cfg), tok, eos)
        logits, hidden = forward(cfg, w, ids)
        L = cfg['num_hidden_layers']
        cross_layer, cross_from = L - 1, n - 3
        jac, cross = jacobians(cfg, w, hidden, cross_layer, cross_from)
        greedy_ids, margin = generate(cfg, w, prompt_ids, GREEDY_TOKENS)
        plain = {k: v for k, v in cfg.items() if k not in ('rope_scaling',)}
        plain_logits, _ = forward(plain, w, ids)
        tensors = {
            'ids': torch.tensor(ids, dtype=torch.float64),
            'logits': logits.detach().to(torch.float32),  # rounded on storage: 6e-8 relative
            'hidden': torch.stack(hidden).detach(),
            'jacobians': jac.detach(),
            'cross': cross.detach(),
        }
        meta = {
            'text': TEXT, 'ids': ids, 'jacobian_position': n - 1,
            'cross_layer': cross_layer, 'cross_from': cross_from,
            'greedy_prompt': PROMPT, 'greedy_prompt_ids': prompt_ids, 'greedy_ids': greedy_ids,
            'greedy_min_margin': margin,
            'unscaled_logits_max_diff': (logits - plain_logits).abs().max().item(),
            'made_by': 'scripts/reference/rope_fixtures.py', 'seed': SEED,
        }
        if name in ('llama-rope-dynamic', 'phi3-longrope'):
            # One token per forward call: position t uses seq_len t + 1 (dynamic: each step its own
            # NTK base; longrope: short factors up to original, then everything recomputed long).
            step_logits = stepwise_logits(cfg, w, ids).detach()
            tensors['step_logits'] = step_logits.to(torch.float32)
            meta['step_vs_whole_max_diff'] = (step_logits - logits).abs().max().item()
        base.write_safetensors(os.path.join(ROOT, f'{name}.reference.safetensors'), tensors)
        with open(os.path.join(ROOT, f'{name}.reference.json'), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
        print(f'{name}: {n} tokens, greedy margin {margin:.3g}, scaling moves logits by '
              f'{meta["unscaled_logits_max_diff"]:.3g}', file=sys.stderr)


if __name__ == '__main__':
    main()

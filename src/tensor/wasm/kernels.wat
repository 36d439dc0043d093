;; lmdyn's hand-written WebAssembly SIMD kernels.
;;
;; Why hand-written: every token's forward pass is dominated by matrix·vector products, and plain
;; JS loops reach ~0.4–1.5 GFLOP/s on them, far below what the memory bus can feed. These f32x4
;; loops read each weight once per call and keep several independent accumulators in registers,
;; which is what it takes to approach the memory-bandwidth limit.
;;
;; Kernels: matmul_f32 (fp32 weights), quantize_q80 and matmul_q80 (Q8_0 weights), matmul_h16
;; (f16 / bf16 weights), attn_scores and
;; attn_mix (one attention head against the KV cache), exp_f64 (softmax exponentials),
;; softmax_stats_f32 (log Z and entropy of a logits row), filter_gt_f32 (the candidates of a top-k).
;;
;; Conventions: every pointer is a byte offset into the imported shared memory (the arena of
;; src/tensor/memory.ts); matrices are row-major f32; no alignment is assumed (loads carry the
;; natural alignment hint only). Threads split the output rows: each call computes the output
;; columns [r0, r1) of every row of x, so two callers with disjoint ranges never write the same
;; bytes.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; matmul_f32: out[n, rows] = x[n, cols] · Wᵀ, W: [rows, cols], restricted to W rows [r0, r1).
  ;; out's rows are ldo floats apart (ldo = rows for a dense out; a thread computing into its own
  ;; scratch passes out − 4·r0 and ldo = r1 − r0).
  ;;
  ;; Tiles of 4 W rows × 2 x rows (8 f32x4 accumulators) so each W load feeds two rows of x;
  ;; for n = 1 (decoding) tiles of 4 W rows × 1 x row with the columns unrolled by 8. The x rows
  ;; are taken in blocks of ~256 KiB (L2-resident) and every 4-row W tile sweeps the whole block,
  ;; so W streams from memory once per block: once for decoding and short prefills.
  (func (export "matmul_f32")
    (param $out i32) (param $x i32) (param $w i32) (param $n i32)
    (param $ldo i32) (param $cols i32) (param $r0 i32) (param $r1 i32)
    (local $rs i32)   ;; bytes per row of x and of W
    (local $os i32)   ;; bytes per row of out
    (local $nb i32)   ;; x rows per block
    (local $t0 i32) (local $t1 i32) (local $t i32) (local $i i32)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $os (i32.shl (local.get $ldo) (i32.const 2)))
    ;; nb = max(2, even(262144 / rs))
    (local.set $nb (i32.and (i32.div_u (i32.const 262144) (local.get $rs)) (i32.const -2)))
    (if (i32.lt_u (local.get $nb) (i32.const 2)) (then (local.set $nb (i32.const 2))))
    (local.set $t0 (i32.const 0))
    (block $blocks_done
      (loop $blocks
        (br_if $blocks_done (i32.ge_u (local.get $t0) (local.get $n)))
        (local.set $t1 (i32.add (local.get $t0) (local.get $nb)))
        (if (i32.gt_u (local.get $t1) (local.get $n)) (then (local.set $t1 (local.get $n))))
        ;; 4-row W tiles
        (local.set $i (local.get $r0))
        (block $tiles_done
          (loop $tiles
            (br_if $tiles_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $r1)))
            (local.set $t (local.get $t0))
            (block $pairs_done
              (loop $pairs
                (br_if $pairs_done (i32.gt_u (i32.add (local.get $t) (i32.const 2)) (local.get $t1)))
                (call $tile4x2
                  (i32.add (local.get $x) (i32.mul (local.get $t) (local.get $rs)))
                  (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $rs)))
                  (local.get $cols)
                  (i32.add (local.get $out)
                    (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2))))
                  (local.get $os))
                (local.set $t (i32.add (local.get $t) (i32.const 2)))
                (br $pairs)))
            (if (i32.lt_u (local.get $t) (local.get $t1))
              (then
                (call $tile4x1
                  (i32.add (local.get $x) (i32.mul (local.get $t) (local.get $rs)))
                  (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $rs)))
                  (local.get $cols)
                  (i32.add (local.get $out)
                    (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2)))))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $tiles)))
        ;; the last r1 − r0 mod 4 W rows, one dot product at a time
        (block $rest_done
          (loop $rest
            (br_if $rest_done (i32.ge_u (local.get $i) (local.get $r1)))
            (local.set $t (local.get $t0))
            (block $row_done
              (loop $row
                (br_if $row_done (i32.ge_u (local.get $t) (local.get $t1)))
                (f32.store
                  (i32.add (local.get $out)
                    (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2))))
                  (call $dot
                    (i32.add (local.get $x) (i32.mul (local.get $t) (local.get $rs)))
                    (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $rs)))
                    (local.get $cols)))
                (local.set $t (i32.add (local.get $t) (i32.const 1)))
                (br $row)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $rest)))
        (local.set $t0 (local.get $t1))
        (br $blocks))))

  ;; out[0..4) = W[0..4) · x for 4 consecutive W rows (row stride = cols) and one x row.
  (func $tile4x1 (param $x i32) (param $w i32) (param $cols i32) (param $out i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $rs i32)
    (local $end i32) (local $tail i32)
    (local $xa v128) (local $xb v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $xs f32)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $p0 (local.get $w))
    (local.set $p1 (i32.add (local.get $p0) (local.get $rs)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $rs)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $rs)))
    ;; columns in steps of 8: two independent accumulators per row hide the add latency
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (block $done8
      (loop $cols8
        (br_if $done8 (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xa (v128.load (local.get $x)))
        (local.set $xb (v128.load offset=16 (local.get $x)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xa) (v128.load (local.get $p0)))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $xb) (v128.load offset=16 (local.get $p0)))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xa) (v128.load (local.get $p1)))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $xb) (v128.load offset=16 (local.get $p1)))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xa) (v128.load (local.get $p2)))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $xb) (v128.load offset=16 (local.get $p2)))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xa) (v128.load (local.get $p3)))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $xb) (v128.load offset=16 (local.get $p3)))))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 32)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 32)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 32)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 32)))
        (br $cols8)))
    ;; one step of 4 when cols mod 8 ≥ 4
    (if (i32.and (local.get $cols) (i32.const 4))
      (then
        (local.set $xa (v128.load (local.get $x)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xa) (v128.load (local.get $p0)))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xa) (v128.load (local.get $p1)))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xa) (v128.load (local.get $p2)))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xa) (v128.load (local.get $p3)))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))))
    (local.set $s0 (call $hsum (f32x4.add (local.get $a0) (local.get $b0))))
    (local.set $s1 (call $hsum (f32x4.add (local.get $a1) (local.get $b1))))
    (local.set $s2 (call $hsum (f32x4.add (local.get $a2) (local.get $b2))))
    (local.set $s3 (call $hsum (f32x4.add (local.get $a3) (local.get $b3))))
    ;; the last cols mod 4 columns, scalar
    (local.set $tail (i32.and (local.get $cols) (i32.const 3)))
    (block $tail_done
      (loop $tail_loop
        (br_if $tail_done (i32.eqz (local.get $tail)))
        (local.set $xs (f32.load (local.get $x)))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $xs) (f32.load (local.get $p0)))))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $xs) (f32.load (local.get $p1)))))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $xs) (f32.load (local.get $p2)))))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $xs) (f32.load (local.get $p3)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
        (local.set $tail (i32.sub (local.get $tail) (i32.const 1)))
        (br $tail_loop)))
    (f32.store (local.get $out) (local.get $s0))
    (f32.store offset=4 (local.get $out) (local.get $s1))
    (f32.store offset=8 (local.get $out) (local.get $s2))
    (f32.store offset=12 (local.get $out) (local.get $s3)))

  ;; out[t, 0..4) = W[0..4) · x[t] for 4 consecutive W rows and 2 consecutive x rows
  ;; (both with row stride cols); the second output row starts os bytes after the first.
  (func $tile4x2 (param $x i32) (param $w i32) (param $cols i32) (param $out i32) (param $os i32)
    (local $q i32) (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $rs i32)
    (local $end i32) (local $tail i32)
    (local $xa v128) (local $xb v128) (local $wv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32)
    (local $u0 f32) (local $u1 f32) (local $u2 f32) (local $u3 f32)
    (local $xs f32) (local $ys f32) (local $ws f32)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $q (i32.add (local.get $x) (local.get $rs)))
    (local.set $p0 (local.get $w))
    (local.set $p1 (i32.add (local.get $p0) (local.get $rs)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $rs)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $rs)))
    ;; a_k accumulates W row k · x row 0, b_k W row k · x row 1
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -4)) (i32.const 2))))
    (block $done4
      (loop $cols4
        (br_if $done4 (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xa (v128.load (local.get $x)))
        (local.set $xb (v128.load (local.get $q)))
        (local.set $wv (v128.load (local.get $p0)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xa) (local.get $wv))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $xb) (local.get $wv))))
        (local.set $wv (v128.load (local.get $p1)))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xa) (local.get $wv))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $xb) (local.get $wv))))
        (local.set $wv (v128.load (local.get $p2)))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xa) (local.get $wv))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $xb) (local.get $wv))))
        (local.set $wv (v128.load (local.get $p3)))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xa) (local.get $wv))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $xb) (local.get $wv))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $q (i32.add (local.get $q) (i32.const 16)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
        (br $cols4)))
    (local.set $s0 (call $hsum (local.get $a0)))
    (local.set $s1 (call $hsum (local.get $a1)))
    (local.set $s2 (call $hsum (local.get $a2)))
    (local.set $s3 (call $hsum (local.get $a3)))
    (local.set $u0 (call $hsum (local.get $b0)))
    (local.set $u1 (call $hsum (local.get $b1)))
    (local.set $u2 (call $hsum (local.get $b2)))
    (local.set $u3 (call $hsum (local.get $b3)))
    (local.set $tail (i32.and (local.get $cols) (i32.const 3)))
    (block $tail_done
      (loop $tail_loop
        (br_if $tail_done (i32.eqz (local.get $tail)))
        (local.set $xs (f32.load (local.get $x)))
        (local.set $ys (f32.load (local.get $q)))
        (local.set $ws (f32.load (local.get $p0)))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $xs) (local.get $ws))))
        (local.set $u0 (f32.add (local.get $u0) (f32.mul (local.get $ys) (local.get $ws))))
        (local.set $ws (f32.load (local.get $p1)))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $xs) (local.get $ws))))
        (local.set $u1 (f32.add (local.get $u1) (f32.mul (local.get $ys) (local.get $ws))))
        (local.set $ws (f32.load (local.get $p2)))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $xs) (local.get $ws))))
        (local.set $u2 (f32.add (local.get $u2) (f32.mul (local.get $ys) (local.get $ws))))
        (local.set $ws (f32.load (local.get $p3)))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $xs) (local.get $ws))))
        (local.set $u3 (f32.add (local.get $u3) (f32.mul (local.get $ys) (local.get $ws))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $q (i32.add (local.get $q) (i32.const 4)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 4)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 4)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 4)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 4)))
        (local.set $tail (i32.sub (local.get $tail) (i32.const 1)))
        (br $tail_loop)))
    (f32.store (local.get $out) (local.get $s0))
    (f32.store offset=4 (local.get $out) (local.get $s1))
    (f32.store offset=8 (local.get $out) (local.get $s2))
    (f32.store offset=12 (local.get $out) (local.get $s3))
    (local.set $out (i32.add (local.get $out) (local.get $os)))
    (f32.store (local.get $out) (local.get $u0))
    (f32.store offset=4 (local.get $out) (local.get $u1))
    (f32.store offset=8 (local.get $out) (local.get $u2))
    (f32.store offset=12 (local.get $out) (local.get $u3)))

  ;; Σ_j x[j]·w[j] over cols values: one W row, one x row.
  (func $dot (param $x i32) (param $w i32) (param $cols i32) (result f32)
    (local $end i32) (local $tail i32) (local $a v128) (local $b v128) (local $s f32)
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (block $done8
      (loop $cols8
        (br_if $done8 (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $a (f32x4.add (local.get $a) (f32x4.mul (v128.load (local.get $x)) (v128.load (local.get $w)))))
        (local.set $b (f32x4.add (local.get $b)
          (f32x4.mul (v128.load offset=16 (local.get $x)) (v128.load offset=16 (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 32)))
        (local.set $w (i32.add (local.get $w) (i32.const 32)))
        (br $cols8)))
    (if (i32.and (local.get $cols) (i32.const 4))
      (then
        (local.set $a (f32x4.add (local.get $a) (f32x4.mul (v128.load (local.get $x)) (v128.load (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 16)))))
    (local.set $s (call $hsum (f32x4.add (local.get $a) (local.get $b))))
    (local.set $tail (i32.and (local.get $cols) (i32.const 3)))
    (block $tail_done
      (loop $tail_loop
        (br_if $tail_done (i32.eqz (local.get $tail)))
        (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $x)) (f32.load (local.get $w)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 4)))
        (local.set $tail (i32.sub (local.get $tail) (i32.const 1)))
        (br $tail_loop)))
    (local.get $s))

;; ---------------------------------------------------------------------------------------------
;; Q8_0 (llama2.c runq.c layout): a matrix is int8 values q [rows, cols] and one f32 scale per
;; group of gs consecutive values of a row, s [rows, cols/gs]; value = q · s. gs is a multiple of
;; 16 dividing cols (runq.c: 64 halved until it divides dim; GGUF: 32).
;;
;; The activations are quantized the same way, per group of gs (quantize_q80), and each group's
;; dot product is taken in int32 (exact) and scaled once: Σ_g s_w[g]·s_x[g]·Σ_j q_w[j]·q_x[j].
;; This is runq.c's and llama.cpp's Q8_0×Q8_0 scheme; dequantizing W to f32 on the fly instead
;; would keep x exact but costs ~2.5× the SIMD work per weight, which makes the kernel
;; compute-bound below memory speed on one core, while int8 x adds an error of the same size as
;; W's own quantization (≤ ½ step of 1/127 of the group's largest |x|).

  ;; xq[k] = nearest(x[k] / s), s = max|x[group]| / 127 per group of gs, for k < count
  ;; (count a multiple of gs). A group of zeros gets s = 0 and q = 0 (0/0 = NaN saturates to 0).
  ;; Ties round to even, like export.py's torch.round.
  (func (export "quantize_q80") (param $x i32) (param $count i32) (param $gs i32) (param $xq i32) (param $xs i32)
    (local $end i32) (local $gend i32) (local $p i32) (local $m v128) (local $sv v128) (local $s f32)
    (local.set $end (i32.add (local.get $x) (i32.shl (local.get $count) (i32.const 2))))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $gend (i32.add (local.get $x) (i32.shl (local.get $gs) (i32.const 2))))
        ;; m = max |x| over the group
        (local.set $m (v128.const i32x4 0 0 0 0))
        (local.set $p (local.get $x))
        (loop $max
          (local.set $m (f32x4.max (local.get $m) (f32x4.abs (v128.load (local.get $p)))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $max (i32.lt_u (local.get $p) (local.get $gend))))
        (local.set $m (f32x4.max (local.get $m)
          (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $m) (local.get $m))))
        (local.set $s (f32.div
          (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
          (f32.const 127)))
        (f32.store (local.get $xs) (local.get $s))
        (local.set $sv (f32x4.splat (local.get $s)))
        ;; 16 values at a time: f32 → i32 → i16 → i8
        (loop $quant
          (v128.store (local.get $xq)
            (i8x16.narrow_i16x8_s
              (i16x8.narrow_i32x4_s
                (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.div (v128.load (local.get $x)) (local.get $sv))))
                (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.div (v128.load offset=16 (local.get $x)) (local.get $sv)))))
              (i16x8.narrow_i32x4_s
                (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.div (v128.load offset=32 (local.get $x)) (local.get $sv))))
                (i32x4.trunc_sat_f32x4_s (f32x4.nearest (f32x4.div (v128.load offset=48 (local.get $x)) (local.get $sv)))))))
          (local.set $x (i32.add (local.get $x) (i32.const 64)))
          (local.set $xq (i32.add (local.get $xq) (i32.const 16)))
          (br_if $quant (i32.lt_u (local.get $x) (local.get $gend))))
        (local.set $xs (i32.add (local.get $xs) (i32.const 4)))
        (br $groups))))

  ;; matmul_q80: out[n, rows] = x[n, cols] · Wᵀ with W and x in Q8_0 (x already quantized:
  ;; xq [n, cols], xs [n, cols/gs]), restricted to W rows [r0, r1); out's rows ldo floats apart. Tiles of 4 W rows share each
  ;; x load and its widening; for n > 1 each tile (4·cols bytes, L1-resident) sweeps every row
  ;; of x, so W streams from memory once.
  (func (export "matmul_q80")
    (param $out i32) (param $xq i32) (param $xs i32) (param $wq i32) (param $ws i32)
    (param $n i32) (param $ldo i32) (param $cols i32) (param $gs i32) (param $r0 i32) (param $r1 i32)
    (local $ss i32)  ;; bytes of scales per row
    (local $os i32)  ;; bytes per row of out
    (local $i i32) (local $t i32)
    (local.set $ss (i32.shl (i32.div_u (local.get $cols) (local.get $gs)) (i32.const 2)))
    (local.set $os (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $i (local.get $r0))
    (block $tiles_done
      (loop $tiles
        (br_if $tiles_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $r1)))
        (local.set $t (i32.const 0))
        (block $xrows_done
          (loop $xrows
            (br_if $xrows_done (i32.ge_u (local.get $t) (local.get $n)))
            (call $q80_tile4
              (i32.add (local.get $xq) (i32.mul (local.get $t) (local.get $cols)))
              (i32.add (local.get $xs) (i32.mul (local.get $t) (local.get $ss)))
              (i32.add (local.get $wq) (i32.mul (local.get $i) (local.get $cols)))
              (i32.add (local.get $ws) (i32.mul (local.get $i) (local.get $ss)))
              (local.get $cols) (local.get $gs)
              (i32.add (local.get $out)
                (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2)))))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $xrows)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tiles)))
    ;; the last r1 − r0 mod 4 rows
    (block $rest_done
      (loop $rest
        (br_if $rest_done (i32.ge_u (local.get $i) (local.get $r1)))
        (local.set $t (i32.const 0))
        (block $row_done
          (loop $row
            (br_if $row_done (i32.ge_u (local.get $t) (local.get $n)))
            (f32.store
              (i32.add (local.get $out)
                (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2))))
              (call $q80_dot
                (i32.add (local.get $xq) (i32.mul (local.get $t) (local.get $cols)))
                (i32.add (local.get $xs) (i32.mul (local.get $t) (local.get $ss)))
                (i32.add (local.get $wq) (i32.mul (local.get $i) (local.get $cols)))
                (i32.add (local.get $ws) (i32.mul (local.get $i) (local.get $ss)))
                (local.get $cols) (local.get $gs)))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $row)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rest))))

  ;; out[0..4) = 4 consecutive Q8_0 W rows · one quantized x row.
  (func $q80_tile4 (param $xq i32) (param $xs i32) (param $wq i32) (param $ws i32)
    (param $cols i32) (param $gs i32) (param $out i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32)
    (local $s0 i32) (local $s1 i32) (local $s2 i32) (local $s3 i32) (local $ss i32)
    (local $end i32) (local $gend i32) (local $xsg f32)
    (local $xv v128) (local $xl v128) (local $xh v128) (local $wv v128)
    (local $i0 v128) (local $i1 v128) (local $i2 v128) (local $i3 v128)  ;; int32 sums of a group
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)  ;; f32 sums of the row
    (local.set $ss (i32.shl (i32.div_u (local.get $cols) (local.get $gs)) (i32.const 2)))
    (local.set $p0 (local.get $wq))
    (local.set $p1 (i32.add (local.get $p0) (local.get $cols)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $cols)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $cols)))
    (local.set $s0 (local.get $ws))
    (local.set $s1 (i32.add (local.get $s0) (local.get $ss)))
    (local.set $s2 (i32.add (local.get $s1) (local.get $ss)))
    (local.set $s3 (i32.add (local.get $s2) (local.get $ss)))
    (local.set $end (i32.add (local.get $xq) (local.get $cols)))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_u (local.get $xq) (local.get $end)))
        (local.set $gend (i32.add (local.get $xq) (local.get $gs)))
        (local.set $i0 (v128.const i32x4 0 0 0 0))
        (local.set $i1 (v128.const i32x4 0 0 0 0))
        (local.set $i2 (v128.const i32x4 0 0 0 0))
        (local.set $i3 (v128.const i32x4 0 0 0 0))
        ;; 16 int8 products per row per step, widened to int16 and pairwise-summed into int32
        (loop $chunks
          (local.set $xv (v128.load (local.get $xq)))
          (local.set $xl (i16x8.extend_low_i8x16_s (local.get $xv)))
          (local.set $xh (i16x8.extend_high_i8x16_s (local.get $xv)))
          (local.set $wv (v128.load (local.get $p0)))
          (local.set $i0 (i32x4.add (local.get $i0) (i32x4.add
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wv)) (local.get $xl))
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wv)) (local.get $xh)))))
          (local.set $wv (v128.load (local.get $p1)))
          (local.set $i1 (i32x4.add (local.get $i1) (i32x4.add
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wv)) (local.get $xl))
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wv)) (local.get $xh)))))
          (local.set $wv (v128.load (local.get $p2)))
          (local.set $i2 (i32x4.add (local.get $i2) (i32x4.add
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wv)) (local.get $xl))
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wv)) (local.get $xh)))))
          (local.set $wv (v128.load (local.get $p3)))
          (local.set $i3 (i32x4.add (local.get $i3) (i32x4.add
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wv)) (local.get $xl))
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wv)) (local.get $xh)))))
          (local.set $xq (i32.add (local.get $xq) (i32.const 16)))
          (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
          (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
          (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
          (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
          (br_if $chunks (i32.lt_u (local.get $xq) (local.get $gend))))
        ;; a_k += s_w[k, g] · s_x[g] · (int32 sums); |Σ| ≤ gs·127² < 2²⁴ converts exactly
        (local.set $xsg (f32.load (local.get $xs)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (f32x4.convert_i32x4_s (local.get $i0))
          (f32x4.splat (f32.mul (f32.load (local.get $s0)) (local.get $xsg))))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (f32x4.convert_i32x4_s (local.get $i1))
          (f32x4.splat (f32.mul (f32.load (local.get $s1)) (local.get $xsg))))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (f32x4.convert_i32x4_s (local.get $i2))
          (f32x4.splat (f32.mul (f32.load (local.get $s2)) (local.get $xsg))))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (f32x4.convert_i32x4_s (local.get $i3))
          (f32x4.splat (f32.mul (f32.load (local.get $s3)) (local.get $xsg))))))
        (local.set $xs (i32.add (local.get $xs) (i32.const 4)))
        (local.set $s0 (i32.add (local.get $s0) (i32.const 4)))
        (local.set $s1 (i32.add (local.get $s1) (i32.const 4)))
        (local.set $s2 (i32.add (local.get $s2) (i32.const 4)))
        (local.set $s3 (i32.add (local.get $s3) (i32.const 4)))
        (br $groups)))
    (f32.store (local.get $out) (call $hsum (local.get $a0)))
    (f32.store offset=4 (local.get $out) (call $hsum (local.get $a1)))
    (f32.store offset=8 (local.get $out) (call $hsum (local.get $a2)))
    (f32.store offset=12 (local.get $out) (call $hsum (local.get $a3))))

  ;; One Q8_0 W row · one quantized x row.
  (func $q80_dot (param $xq i32) (param $xs i32) (param $wq i32) (param $ws i32)
    (param $cols i32) (param $gs i32) (result f32)
    (local $end i32) (local $gend i32) (local $xv v128) (local $wv v128) (local $i v128) (local $a v128)
    (local.set $end (i32.add (local.get $xq) (local.get $cols)))
    (block $done
      (loop $groups
        (br_if $done (i32.ge_u (local.get $xq) (local.get $end)))
        (local.set $gend (i32.add (local.get $xq) (local.get $gs)))
        (local.set $i (v128.const i32x4 0 0 0 0))
        (loop $chunks
          (local.set $xv (v128.load (local.get $xq)))
          (local.set $wv (v128.load (local.get $wq)))
          (local.set $i (i32x4.add (local.get $i) (i32x4.add
            (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wv)) (i16x8.extend_low_i8x16_s (local.get $xv)))
            (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wv)) (i16x8.extend_high_i8x16_s (local.get $xv))))))
          (local.set $xq (i32.add (local.get $xq) (i32.const 16)))
          (local.set $wq (i32.add (local.get $wq) (i32.const 16)))
          (br_if $chunks (i32.lt_u (local.get $xq) (local.get $gend))))
        (local.set $a (f32x4.add (local.get $a) (f32x4.mul (f32x4.convert_i32x4_s (local.get $i))
          (f32x4.splat (f32.mul (f32.load (local.get $ws)) (f32.load (local.get $xs)))))))
        (local.set $xs (i32.add (local.get $xs) (i32.const 4)))
        (local.set $ws (i32.add (local.get $ws) (i32.const 4)))
        (br $groups)))
    (call $hsum (local.get $a)))

;; ---------------------------------------------------------------------------------------------
;; 16-bit float weights (f16 = IEEE binary16, bf16 = the top half of an f32), row-major
;; [rows, cols] u16. Each weight is widened exactly to f32 on the fly and the products and sums
;; are f32, as for matmul_f32: half of fp32's bytes stream from memory.
;;
;; Widening, with w = h << 16 in an i32 lane (h the 16 bits):
;;   bf16: w is the f32.
;;   f16:  a = w & 0x7fff0000 (|h| << 16), sign = w ^ a;
;;         f32(bits a >> 3) · 2¹¹²: the 5 exponent and 10 mantissa bits land in the f32's fields
;;           with bias 15 instead of 127, and the power of two puts the bias right, exactly, for
;;           normals, subnormals (an f32 subnormal times 2¹¹² is a normal; wasm keeps subnormals,
;;           no flush to zero) and ±0;
;;         inf / NaN (a > 0x7bffffff, exponent 31): the exponent bits set to all ones instead;
;;         result = sign | that.
;; Measured (2048², one thread, docs/memory.md) ~1.8× faster than a variant that never multiplies
;; a subnormal (Maratyszcza's FP16 magic-number scheme); CPUs with slow subnormal operands only
;; pay it on the (rare) subnormal weights.

  ;; matmul_h16: out[n, rows] = x[n, cols] · Wᵀ for 16-bit W (f16 = 1: binary16, 0: bfloat16),
  ;; restricted to W rows [r0, r1); out's rows ldo floats apart. Tiles of 4 W rows (8·cols bytes,
  ;; L1/L2-resident) sweep every row of x, so W streams from memory once.
  (func (export "matmul_h16")
    (param $out i32) (param $x i32) (param $w i32) (param $n i32)
    (param $ldo i32) (param $cols i32) (param $r0 i32) (param $r1 i32) (param $f16 i32)
    (local $rs i32) (local $hs i32) (local $os i32) (local $i i32) (local $t i32)
    (local.set $rs (i32.shl (local.get $cols) (i32.const 2)))
    (local.set $hs (i32.shl (local.get $cols) (i32.const 1)))
    (local.set $os (i32.shl (local.get $ldo) (i32.const 2)))
    (local.set $i (local.get $r0))
    (block $tiles_done
      (loop $tiles
        (br_if $tiles_done (i32.gt_u (i32.add (local.get $i) (i32.const 4)) (local.get $r1)))
        (local.set $t (i32.const 0))
        (block $xrows_done
          (loop $xrows
            (br_if $xrows_done (i32.ge_u (local.get $t) (local.get $n)))
            (call $h16_tile4
              (i32.add (local.get $x) (i32.mul (local.get $t) (local.get $rs)))
              (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $hs)))
              (local.get $cols)
              (i32.add (local.get $out)
                (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2))))
              (local.get $f16))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $xrows)))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $tiles)))
    ;; the last r1 − r0 mod 4 rows
    (block $rest_done
      (loop $rest
        (br_if $rest_done (i32.ge_u (local.get $i) (local.get $r1)))
        (local.set $t (i32.const 0))
        (block $row_done
          (loop $row
            (br_if $row_done (i32.ge_u (local.get $t) (local.get $n)))
            (f32.store
              (i32.add (local.get $out)
                (i32.add (i32.mul (local.get $t) (local.get $os)) (i32.shl (local.get $i) (i32.const 2))))
              (call $h16_dot
                (i32.add (local.get $x) (i32.mul (local.get $t) (local.get $rs)))
                (i32.add (local.get $w) (i32.mul (local.get $i) (local.get $hs)))
                (local.get $cols) (local.get $f16)))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $row)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $rest))))

  ;; out[0..4) = 4 consecutive 16-bit W rows (row stride 2·cols bytes) · one f32 x row; 4 columns
  ;; per step, the f16 widening written out for each row (no call in the loop).
  (func $h16_tile4 (param $x i32) (param $w i32) (param $cols i32) (param $out i32) (param $f16 i32)
    (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $hs i32)
    (local $end i32) (local $tail i32) (local $xv v128) (local $a v128)
    (local $w0 v128) (local $w1 v128) (local $w2 v128) (local $w3 v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $scale112 v128) (local $inf_bits v128) (local $max_finite v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128) (local $xe v128) (local $xo v128)
    (local $hi_mask v128) (local $abs_mask v128) (local $end8 i32)
    (local $s0 f32) (local $s1 f32) (local $s2 f32) (local $s3 f32) (local $xs f32)
    (local.set $scale112 (v128.const i32x4 0x77800000 0x77800000 0x77800000 0x77800000))
    (local.set $inf_bits (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000))
    (local.set $max_finite (v128.const i32x4 0x7bffffff 0x7bffffff 0x7bffffff 0x7bffffff))
    (local.set $hi_mask (v128.const i32x4 0xffff0000 0xffff0000 0xffff0000 0xffff0000))
    (local.set $abs_mask (v128.const i32x4 0x7fff0000 0x7fff0000 0x7fff0000 0x7fff0000))
    (local.set $hs (i32.shl (local.get $cols) (i32.const 1)))
    (local.set $p0 (local.get $w))
    (local.set $p1 (i32.add (local.get $p0) (local.get $hs)))
    (local.set $p2 (i32.add (local.get $p1) (local.get $hs)))
    (local.set $p3 (i32.add (local.get $p2) (local.get $hs)))
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -4)) (i32.const 2))))
    ;; bf16, 8 columns per step: lane k of a 16-byte load holds halves 2k (low) and 2k+1 (high),
    ;; so w << 16 is the even columns as f32 and w & 0xffff0000 the odd ones; x is split the same
    ;; way once per step for the 4 rows.
    (local.set $end8 (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -8)) (i32.const 2))))
    (if (i32.eqz (local.get $f16))
      (then
        (block $bf16_done
          (loop $bf16_cols
            (br_if $bf16_done (i32.ge_u (local.get $x) (local.get $end8)))
            (local.set $xv (v128.load (local.get $x)))
            (local.set $a (v128.load offset=16 (local.get $x)))
            (local.set $xe (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $xv) (local.get $a)))
            (local.set $xo (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $xv) (local.get $a)))
            (local.set $w0 (v128.load (local.get $p0)))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xe) (i32x4.shl (local.get $w0) (i32.const 16)))))
            (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $xo) (v128.and (local.get $w0) (local.get $hi_mask)))))
            (local.set $w1 (v128.load (local.get $p1)))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xe) (i32x4.shl (local.get $w1) (i32.const 16)))))
            (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $xo) (v128.and (local.get $w1) (local.get $hi_mask)))))
            (local.set $w2 (v128.load (local.get $p2)))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xe) (i32x4.shl (local.get $w2) (i32.const 16)))))
            (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $xo) (v128.and (local.get $w2) (local.get $hi_mask)))))
            (local.set $w3 (v128.load (local.get $p3)))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xe) (i32x4.shl (local.get $w3) (i32.const 16)))))
            (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $xo) (v128.and (local.get $w3) (local.get $hi_mask)))))
            (local.set $x (i32.add (local.get $x) (i32.const 32)))
            (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
            (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
            (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
            (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
            (br $bf16_cols)))
        (local.set $a0 (f32x4.add (local.get $a0) (local.get $b0)))
        (local.set $a1 (f32x4.add (local.get $a1) (local.get $b1)))
        (local.set $a2 (f32x4.add (local.get $a2) (local.get $b2)))
        (local.set $a3 (f32x4.add (local.get $a3) (local.get $b3))))
      (else
        ;; f16, 8 columns per step split the same way, each half widened as above
        (block $f16_done
          (loop $f16_cols
            (br_if $f16_done (i32.ge_u (local.get $x) (local.get $end8)))
            (local.set $xv (v128.load (local.get $x)))
            (local.set $a (v128.load offset=16 (local.get $x)))
            (local.set $xe (i8x16.shuffle 0 1 2 3 8 9 10 11 16 17 18 19 24 25 26 27 (local.get $xv) (local.get $a)))
            (local.set $xo (i8x16.shuffle 4 5 6 7 12 13 14 15 20 21 22 23 28 29 30 31 (local.get $xv) (local.get $a)))
            (local.set $w0 (v128.load (local.get $p0)))
            (local.set $w1 (i32x4.shl (local.get $w0) (i32.const 16)))
            (local.set $w0 (v128.and (local.get $w0) (local.get $hi_mask)))
            (local.set $a (v128.and (local.get $w1) (local.get $abs_mask)))
            (local.set $w1 (v128.or (v128.xor (local.get $w1) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w0) (local.get $abs_mask)))
            (local.set $w0 (v128.or (v128.xor (local.get $w0) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a0 (f32x4.add (local.get $a0)
              (f32x4.add (f32x4.mul (local.get $xe) (local.get $w1)) (f32x4.mul (local.get $xo) (local.get $w0)))))
            (local.set $w0 (v128.load (local.get $p1)))
            (local.set $w1 (i32x4.shl (local.get $w0) (i32.const 16)))
            (local.set $w0 (v128.and (local.get $w0) (local.get $hi_mask)))
            (local.set $a (v128.and (local.get $w1) (local.get $abs_mask)))
            (local.set $w1 (v128.or (v128.xor (local.get $w1) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w0) (local.get $abs_mask)))
            (local.set $w0 (v128.or (v128.xor (local.get $w0) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a1 (f32x4.add (local.get $a1)
              (f32x4.add (f32x4.mul (local.get $xe) (local.get $w1)) (f32x4.mul (local.get $xo) (local.get $w0)))))
            (local.set $w0 (v128.load (local.get $p2)))
            (local.set $w1 (i32x4.shl (local.get $w0) (i32.const 16)))
            (local.set $w0 (v128.and (local.get $w0) (local.get $hi_mask)))
            (local.set $a (v128.and (local.get $w1) (local.get $abs_mask)))
            (local.set $w1 (v128.or (v128.xor (local.get $w1) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w0) (local.get $abs_mask)))
            (local.set $w0 (v128.or (v128.xor (local.get $w0) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a2 (f32x4.add (local.get $a2)
              (f32x4.add (f32x4.mul (local.get $xe) (local.get $w1)) (f32x4.mul (local.get $xo) (local.get $w0)))))
            (local.set $w0 (v128.load (local.get $p3)))
            (local.set $w1 (i32x4.shl (local.get $w0) (i32.const 16)))
            (local.set $w0 (v128.and (local.get $w0) (local.get $hi_mask)))
            (local.set $a (v128.and (local.get $w1) (local.get $abs_mask)))
            (local.set $w1 (v128.or (v128.xor (local.get $w1) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w0) (local.get $abs_mask)))
            (local.set $w0 (v128.or (v128.xor (local.get $w0) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a3 (f32x4.add (local.get $a3)
              (f32x4.add (f32x4.mul (local.get $xe) (local.get $w1)) (f32x4.mul (local.get $xo) (local.get $w0)))))
            (local.set $x (i32.add (local.get $x) (i32.const 32)))
            (local.set $p0 (i32.add (local.get $p0) (i32.const 16)))
            (local.set $p1 (i32.add (local.get $p1) (i32.const 16)))
            (local.set $p2 (i32.add (local.get $p2) (i32.const 16)))
            (local.set $p3 (i32.add (local.get $p3) (i32.const 16)))
            (br $f16_cols)))))
    ;; then 4 columns per step, the f16 widening written out per row
    (block $done4
      (loop $cols4
        (br_if $done4 (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $xv (v128.load (local.get $x)))
        (local.set $w0 (i32x4.shl (i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $p0))) (i32.const 16)))
        (local.set $w1 (i32x4.shl (i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $p1))) (i32.const 16)))
        (local.set $w2 (i32x4.shl (i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $p2))) (i32.const 16)))
        (local.set $w3 (i32x4.shl (i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $p3))) (i32.const 16)))
        (if (local.get $f16)
          (then
            (local.set $a (v128.and (local.get $w0) (local.get $abs_mask)))
            (local.set $w0 (v128.or (v128.xor (local.get $w0) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w1) (local.get $abs_mask)))
            (local.set $w1 (v128.or (v128.xor (local.get $w1) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w2) (local.get $abs_mask)))
            (local.set $w2 (v128.or (v128.xor (local.get $w2) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
            (local.set $a (v128.and (local.get $w3) (local.get $abs_mask)))
            (local.set $w3 (v128.or (v128.xor (local.get $w3) (local.get $a))
              (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (local.get $scale112))
                (v128.and (i32x4.gt_s (local.get $a) (local.get $max_finite)) (local.get $inf_bits)))))
))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv) (local.get $w0))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv) (local.get $w1))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv) (local.get $w2))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv) (local.get $w3))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 8)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 8)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 8)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 8)))
        (br $cols4)))
    (local.set $s0 (call $hsum (local.get $a0)))
    (local.set $s1 (call $hsum (local.get $a1)))
    (local.set $s2 (call $hsum (local.get $a2)))
    (local.set $s3 (call $hsum (local.get $a3)))
    ;; the last cols mod 4 columns, one at a time
    (local.set $tail (i32.and (local.get $cols) (i32.const 3)))
    (block $tail_done
      (loop $tail_loop
        (br_if $tail_done (i32.eqz (local.get $tail)))
        (local.set $xs (f32.load (local.get $x)))
        (local.set $s0 (f32.add (local.get $s0) (f32.mul (local.get $xs) (call $h2f (i32.load16_u (local.get $p0)) (local.get $f16)))))
        (local.set $s1 (f32.add (local.get $s1) (f32.mul (local.get $xs) (call $h2f (i32.load16_u (local.get $p1)) (local.get $f16)))))
        (local.set $s2 (f32.add (local.get $s2) (f32.mul (local.get $xs) (call $h2f (i32.load16_u (local.get $p2)) (local.get $f16)))))
        (local.set $s3 (f32.add (local.get $s3) (f32.mul (local.get $xs) (call $h2f (i32.load16_u (local.get $p3)) (local.get $f16)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $p0 (i32.add (local.get $p0) (i32.const 2)))
        (local.set $p1 (i32.add (local.get $p1) (i32.const 2)))
        (local.set $p2 (i32.add (local.get $p2) (i32.const 2)))
        (local.set $p3 (i32.add (local.get $p3) (i32.const 2)))
        (local.set $tail (i32.sub (local.get $tail) (i32.const 1)))
        (br $tail_loop)))
    (f32.store (local.get $out) (local.get $s0))
    (f32.store offset=4 (local.get $out) (local.get $s1))
    (f32.store offset=8 (local.get $out) (local.get $s2))
    (f32.store offset=12 (local.get $out) (local.get $s3)))

  ;; One 16-bit W row · one f32 x row (the rows a 4-row tile leaves over).
  (func $h16_dot (param $x i32) (param $w i32) (param $cols i32) (param $f16 i32) (result f32)
    (local $end i32) (local $tail i32) (local $acc v128) (local $s f32)
    (local.set $end (i32.add (local.get $x) (i32.shl (i32.and (local.get $cols) (i32.const -4)) (i32.const 2))))
    (block $done4
      (loop $cols4
        (br_if $done4 (i32.ge_u (local.get $x) (local.get $end)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (v128.load (local.get $x))
          (call $widen4 (i32x4.shl (i32x4.extend_low_i16x8_u (v128.load64_zero (local.get $w))) (i32.const 16))
            (local.get $f16)))))
        (local.set $x (i32.add (local.get $x) (i32.const 16)))
        (local.set $w (i32.add (local.get $w) (i32.const 8)))
        (br $cols4)))
    (local.set $s (call $hsum (local.get $acc)))
    (local.set $tail (i32.and (local.get $cols) (i32.const 3)))
    (block $tail_done
      (loop $tail_loop
        (br_if $tail_done (i32.eqz (local.get $tail)))
        (local.set $s (f32.add (local.get $s)
          (f32.mul (f32.load (local.get $x)) (call $h2f (i32.load16_u (local.get $w)) (local.get $f16)))))
        (local.set $x (i32.add (local.get $x) (i32.const 4)))
        (local.set $w (i32.add (local.get $w) (i32.const 2)))
        (local.set $tail (i32.sub (local.get $tail) (i32.const 1)))
        (br $tail_loop)))
    (local.get $s))

  ;; One 16-bit value h (low bits of an i32) widened to f32.
  (func $h2f (param $h i32) (param $f16 i32) (result f32)
    (f32x4.extract_lane 0
      (call $widen4 (i32x4.splat (i32.shl (local.get $h) (i32.const 16))) (local.get $f16))))

  ;; Four 16-bit values, each as w = h << 16 in an i32 lane, widened to f32 (see above).
  (func $widen4 (param $w v128) (param $f16 i32) (result v128)
    (local $a v128)
    (if (result v128) (i32.eqz (local.get $f16))
      (then (local.get $w))
      (else
        (local.set $a (v128.and (local.get $w) (v128.const i32x4 0x7fff0000 0x7fff0000 0x7fff0000 0x7fff0000)))
        (v128.or (v128.xor (local.get $w) (local.get $a))
          (v128.or (f32x4.mul (i32x4.shr_u (local.get $a) (i32.const 3)) (v128.const i32x4 0x77800000 0x77800000 0x77800000 0x77800000))
            (v128.and (i32x4.gt_s (local.get $a) (v128.const i32x4 0x7bffffff 0x7bffffff 0x7bffffff 0x7bffffff))
              (v128.const i32x4 0x7f800000 0x7f800000 0x7f800000 0x7f800000)))))))

;; ---------------------------------------------------------------------------------------------
;; Attention of one query head against its sequence's cache (K and V rows ld floats apart, the
;; head's hd values at the start of each row). The softmax between the two runs in JS.

  ;; attn_scores: out[t] = scale · (q · k[t]) for t < n; q: [hd], k[t] = k + 4·ld·t.
  (func (export "attn_scores") (param $out i32) (param $q i32) (param $k i32) (param $ld i32)
    (param $hd i32) (param $n i32) (param $scale f32)
    (local $ks i32) (local $end i32) (local $i i32) (local $hb i32) (local $h8 i32)
    (local $a v128) (local $b v128) (local $s f32)
    (local.set $ks (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $hb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $h8 (i32.and (local.get $hb) (i32.const -32)))
    (local.set $end (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 2))))
    (block $done
      (loop $rows
        (br_if $done (i32.ge_u (local.get $out) (local.get $end)))
        (local.set $a (v128.const i32x4 0 0 0 0))
        (local.set $b (v128.const i32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $d8
          (loop $l8
            (br_if $d8 (i32.ge_u (local.get $i) (local.get $h8)))
            (local.set $a (f32x4.add (local.get $a) (f32x4.mul
              (v128.load (i32.add (local.get $q) (local.get $i)))
              (v128.load (i32.add (local.get $k) (local.get $i))))))
            (local.set $b (f32x4.add (local.get $b) (f32x4.mul
              (v128.load offset=16 (i32.add (local.get $q) (local.get $i)))
              (v128.load offset=16 (i32.add (local.get $k) (local.get $i))))))
            (local.set $i (i32.add (local.get $i) (i32.const 32)))
            (br $l8)))
        (if (i32.and (local.get $hd) (i32.const 4))
          (then
            (local.set $a (f32x4.add (local.get $a) (f32x4.mul
              (v128.load (i32.add (local.get $q) (local.get $i)))
              (v128.load (i32.add (local.get $k) (local.get $i))))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))))
        (local.set $s (call $hsum (f32x4.add (local.get $a) (local.get $b))))
        (block $td
          (loop $tail
            (br_if $td (i32.ge_u (local.get $i) (local.get $hb)))
            (local.set $s (f32.add (local.get $s) (f32.mul
              (f32.load (i32.add (local.get $q) (local.get $i)))
              (f32.load (i32.add (local.get $k) (local.get $i))))))
            (local.set $i (i32.add (local.get $i) (i32.const 4)))
            (br $tail)))
        (f32.store (local.get $out) (f32.mul (local.get $s) (local.get $scale)))
        (local.set $out (i32.add (local.get $out) (i32.const 4)))
        (local.set $k (i32.add (local.get $k) (local.get $ks)))
        (br $rows))))

  ;; attn_mix: z[i] = Σ_{t<n} a[t] · v[t][i] for i < hd; v[t] = v + 4·ld·t. The sum over t runs
  ;; in order, in f32.
  (func (export "attn_mix") (param $z i32) (param $a i32) (param $v i32) (param $ld i32)
    (param $hd i32) (param $n i32)
    (local $vs i32) (local $hb i32) (local $i i32) (local $t i32) (local $aend i32) (local $vp i32)
    (local $w v128) (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $s f32)
    (local.set $vs (i32.shl (local.get $ld) (i32.const 2)))
    (local.set $hb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $aend (i32.add (local.get $a) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $i (i32.const 0))
    ;; 16 values of z at a time: four accumulators stay in registers over all t
    (block $d16
      (loop $l16
        (br_if $d16 (i32.gt_u (i32.add (local.get $i) (i32.const 64)) (local.get $hb)))
        (local.set $c0 (v128.const i32x4 0 0 0 0))
        (local.set $c1 (v128.const i32x4 0 0 0 0))
        (local.set $c2 (v128.const i32x4 0 0 0 0))
        (local.set $c3 (v128.const i32x4 0 0 0 0))
        (local.set $t (local.get $a))
        (local.set $vp (i32.add (local.get $v) (local.get $i)))
        (block $td
          (loop $tl
            (br_if $td (i32.ge_u (local.get $t) (local.get $aend)))
            (local.set $w (f32x4.splat (f32.load (local.get $t))))
            (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul (local.get $w) (v128.load (local.get $vp)))))
            (local.set $c1 (f32x4.add (local.get $c1) (f32x4.mul (local.get $w) (v128.load offset=16 (local.get $vp)))))
            (local.set $c2 (f32x4.add (local.get $c2) (f32x4.mul (local.get $w) (v128.load offset=32 (local.get $vp)))))
            (local.set $c3 (f32x4.add (local.get $c3) (f32x4.mul (local.get $w) (v128.load offset=48 (local.get $vp)))))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (local.set $vp (i32.add (local.get $vp) (local.get $vs)))
            (br $tl)))
        (v128.store (i32.add (local.get $z) (local.get $i)) (local.get $c0))
        (v128.store offset=16 (i32.add (local.get $z) (local.get $i)) (local.get $c1))
        (v128.store offset=32 (i32.add (local.get $z) (local.get $i)) (local.get $c2))
        (v128.store offset=48 (i32.add (local.get $z) (local.get $i)) (local.get $c3))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br $l16)))
    ;; 4 at a time
    (block $d4
      (loop $l4
        (br_if $d4 (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $hb)))
        (local.set $c0 (v128.const i32x4 0 0 0 0))
        (local.set $t (local.get $a))
        (local.set $vp (i32.add (local.get $v) (local.get $i)))
        (block $td
          (loop $tl
            (br_if $td (i32.ge_u (local.get $t) (local.get $aend)))
            (local.set $c0 (f32x4.add (local.get $c0) (f32x4.mul
              (f32x4.splat (f32.load (local.get $t))) (v128.load (local.get $vp)))))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (local.set $vp (i32.add (local.get $vp) (local.get $vs)))
            (br $tl)))
        (v128.store (i32.add (local.get $z) (local.get $i)) (local.get $c0))
        (local.set $i (i32.add (local.get $i) (i32.const 16)))
        (br $l4)))
    ;; the last hd mod 4 values, one at a time
    (block $d1
      (loop $l1
        (br_if $d1 (i32.ge_u (local.get $i) (local.get $hb)))
        (local.set $s (f32.const 0))
        (local.set $t (local.get $a))
        (local.set $vp (i32.add (local.get $v) (local.get $i)))
        (block $td
          (loop $tl
            (br_if $td (i32.ge_u (local.get $t) (local.get $aend)))
            (local.set $s (f32.add (local.get $s) (f32.mul (f32.load (local.get $t)) (f32.load (local.get $vp)))))
            (local.set $t (i32.add (local.get $t) (i32.const 4)))
            (local.set $vp (i32.add (local.get $vp) (local.get $vs)))
            (br $tl)))
        (f32.store (i32.add (local.get $z) (local.get $i)) (local.get $s))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $l1))))

  ;; dst[t, 0..len) = src[t, 0..len) for t < n; rows ld_dst and ld_src floats apart. Moves a
  ;; helper thread's finished chunk from its scratch into the output.
  (func (export "copy_rows") (param $dst i32) (param $ld_dst i32) (param $src i32) (param $ld_src i32)
    (param $n i32) (param $len i32)
    (block $done
      (loop $rows
        (br_if $done (i32.eqz (local.get $n)))
        (memory.copy (local.get $dst) (local.get $src) (i32.shl (local.get $len) (i32.const 2)))
        (local.set $dst (i32.add (local.get $dst) (i32.shl (local.get $ld_dst) (i32.const 2))))
        (local.set $src (i32.add (local.get $src) (i32.shl (local.get $ld_src) (i32.const 2))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $rows))))

;; ---------------------------------------------------------------------------------------------
;; Softmax exponentials for the sampler and the trace recorder: JS's Math.exp costs ~10 ns, and a
;; 32000-token vocabulary takes it 32000 times per generated token (a third of a stories15M step).

  ;; exp_f64: dst[i] = exp(x_i), x_i = f64(src[i]) − shift, for i < n (src f32, dst f64); returns
  ;; Σ dst[i] and stores Σ dst[i]·x_i (−∞ terms as 0) as an f64 at $wsum, for an entropy.
  ;; shift ≥ max(src) keeps every argument ≤ 0, the domain this is written for. The main loop
  ;; takes 8 floats as four f64x2 chains, $vexp's steps written out four times and interleaved
  ;; statement by statement: one chain alone is bound by the latency of its 13-term Horner
  ;; recurrence (2.3× slower). 3.7 ns per value against Math.exp's ~10.
  (func (export "exp_f64") (param $dst i32) (param $src i32) (param $n i32) (param $shift f64)
    (param $wsum i32) (result f64)
    (local $end i32) (local $end8 i32) (local $sh v128) (local $acc v128) (local $v v128)
    (local $w v128) (local $e v128) (local $s f64)
    (local $x0 v128) (local $x1 v128) (local $x2 v128) (local $x3 v128)
    (local $k0 v128) (local $k1 v128) (local $k2 v128) (local $k3 v128)
    (local $m0 v128) (local $m1 v128) (local $m2 v128) (local $m3 v128)
    (local $p0 v128) (local $p1 v128) (local $p2 v128) (local $p3 v128)
    (local $y0 v128) (local $y1 v128) (local $y2 v128) (local $y3 v128) (local $acw v128) (local $sw f64) (local $x f64)
    (local.set $sh (f64x2.splat (local.get $shift)))
    (local.set $acc (v128.const f64x2 0 0))
    (local.set $acw (v128.const f64x2 0 0))
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end8
      (i32.add (local.get $src) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    (block $d8
      (loop $l8
        (br_if $d8 (i32.ge_u (local.get $src) (local.get $end8)))
        (local.set $v (v128.load (local.get $src)))
        (local.set $w (v128.load offset=16 (local.get $src)))
        (local.set $x0 (f64x2.promote_low_f32x4 (local.get $v)))
        (local.set $x1 (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
        (local.set $x2 (f64x2.promote_low_f32x4 (local.get $w)))
        (local.set $x3 (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $w) (local.get $w))))
        (local.set $x0 (f64x2.sub (local.get $x0) (local.get $sh)))
        (local.set $x1 (f64x2.sub (local.get $x1) (local.get $sh)))
        (local.set $x2 (f64x2.sub (local.get $x2) (local.get $sh)))
        (local.set $x3 (f64x2.sub (local.get $x3) (local.get $sh)))
        (local.set $m0 (f64x2.ge (local.get $x0) (v128.const f64x2 -708 -708)))
        (local.set $m1 (f64x2.ge (local.get $x1) (v128.const f64x2 -708 -708)))
        (local.set $m2 (f64x2.ge (local.get $x2) (v128.const f64x2 -708 -708)))
        (local.set $m3 (f64x2.ge (local.get $x3) (v128.const f64x2 -708 -708)))
        (local.set $x0 (f64x2.max (local.get $x0) (v128.const f64x2 -708 -708)))
        (local.set $x1 (f64x2.max (local.get $x1) (v128.const f64x2 -708 -708)))
        (local.set $x2 (f64x2.max (local.get $x2) (v128.const f64x2 -708 -708)))
        (local.set $x3 (f64x2.max (local.get $x3) (v128.const f64x2 -708 -708)))
        (local.set $y0 (local.get $x0))
        (local.set $y1 (local.get $x1))
        (local.set $y2 (local.get $x2))
        (local.set $y3 (local.get $x3))
        (local.set $k0 (f64x2.nearest (f64x2.mul (local.get $x0) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
        (local.set $k1 (f64x2.nearest (f64x2.mul (local.get $x1) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
        (local.set $k2 (f64x2.nearest (f64x2.mul (local.get $x2) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
        (local.set $k3 (f64x2.nearest (f64x2.mul (local.get $x3) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
        (local.set $x0 (f64x2.sub (local.get $x0) (f64x2.mul (local.get $k0) (v128.const f64x2 0.6931471803691238 0.6931471803691238))))
        (local.set $x1 (f64x2.sub (local.get $x1) (f64x2.mul (local.get $k1) (v128.const f64x2 0.6931471803691238 0.6931471803691238))))
        (local.set $x2 (f64x2.sub (local.get $x2) (f64x2.mul (local.get $k2) (v128.const f64x2 0.6931471803691238 0.6931471803691238))))
        (local.set $x3 (f64x2.sub (local.get $x3) (f64x2.mul (local.get $k3) (v128.const f64x2 0.6931471803691238 0.6931471803691238))))
        (local.set $x0 (f64x2.sub (local.get $x0) (f64x2.mul (local.get $k0) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
        (local.set $x1 (f64x2.sub (local.get $x1) (f64x2.mul (local.get $k1) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
        (local.set $x2 (f64x2.sub (local.get $x2) (f64x2.mul (local.get $k2) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
        (local.set $x3 (f64x2.sub (local.get $x3) (f64x2.mul (local.get $k3) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
        (local.set $p0 (v128.const f64x2 1.6059043836821613e-10 1.6059043836821613e-10))
        (local.set $p1 (v128.const f64x2 1.6059043836821613e-10 1.6059043836821613e-10))
        (local.set $p2 (v128.const f64x2 1.6059043836821613e-10 1.6059043836821613e-10))
        (local.set $p3 (v128.const f64x2 1.6059043836821613e-10 1.6059043836821613e-10))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 2.08767569878681e-09 2.08767569878681e-09)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 2.08767569878681e-09 2.08767569878681e-09)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 2.08767569878681e-09 2.08767569878681e-09)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 2.08767569878681e-09 2.08767569878681e-09)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 2.505210838544172e-08 2.505210838544172e-08)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 2.505210838544172e-08 2.505210838544172e-08)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 2.505210838544172e-08 2.505210838544172e-08)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 2.505210838544172e-08 2.505210838544172e-08)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 2.755731922398589e-07 2.755731922398589e-07)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 2.755731922398589e-07 2.755731922398589e-07)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 2.755731922398589e-07 2.755731922398589e-07)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 2.755731922398589e-07 2.755731922398589e-07)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 2.7557319223985893e-06 2.7557319223985893e-06)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 2.7557319223985893e-06 2.7557319223985893e-06)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 2.7557319223985893e-06 2.7557319223985893e-06)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 2.7557319223985893e-06 2.7557319223985893e-06)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 2.48015873015873e-05 2.48015873015873e-05)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 2.48015873015873e-05 2.48015873015873e-05)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 2.48015873015873e-05 2.48015873015873e-05)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 2.48015873015873e-05 2.48015873015873e-05)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 0.0001984126984126984 0.0001984126984126984)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 0.0001984126984126984 0.0001984126984126984)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 0.0001984126984126984 0.0001984126984126984)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 0.0001984126984126984 0.0001984126984126984)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 0.001388888888888889 0.001388888888888889)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 0.001388888888888889 0.001388888888888889)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 0.001388888888888889 0.001388888888888889)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 0.001388888888888889 0.001388888888888889)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 0.008333333333333333 0.008333333333333333)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 0.008333333333333333 0.008333333333333333)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 0.008333333333333333 0.008333333333333333)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 0.008333333333333333 0.008333333333333333)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 0.041666666666666664 0.041666666666666664)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 0.041666666666666664 0.041666666666666664)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 0.041666666666666664 0.041666666666666664)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 0.041666666666666664 0.041666666666666664)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 0.16666666666666666 0.16666666666666666)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 0.16666666666666666 0.16666666666666666)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 0.16666666666666666 0.16666666666666666)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 0.16666666666666666 0.16666666666666666)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 0.5 0.5)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 0.5 0.5)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 0.5 0.5)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 0.5 0.5)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 1.0 1.0)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 1.0 1.0)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 1.0 1.0)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 1.0 1.0)))
        (local.set $p0 (f64x2.add (f64x2.mul (local.get $p0) (local.get $x0)) (v128.const f64x2 1.0 1.0)))
        (local.set $p1 (f64x2.add (f64x2.mul (local.get $p1) (local.get $x1)) (v128.const f64x2 1.0 1.0)))
        (local.set $p2 (f64x2.add (f64x2.mul (local.get $p2) (local.get $x2)) (v128.const f64x2 1.0 1.0)))
        (local.set $p3 (f64x2.add (f64x2.mul (local.get $p3) (local.get $x3)) (v128.const f64x2 1.0 1.0)))
        (local.set $k0 (i64x2.shl (i64x2.sub (f64x2.add (local.get $k0) (v128.const f64x2 6755399441055744 6755399441055744)) (v128.const i64x2 0x4338000000000000 0x4338000000000000)) (i32.const 52)))
        (local.set $k1 (i64x2.shl (i64x2.sub (f64x2.add (local.get $k1) (v128.const f64x2 6755399441055744 6755399441055744)) (v128.const i64x2 0x4338000000000000 0x4338000000000000)) (i32.const 52)))
        (local.set $k2 (i64x2.shl (i64x2.sub (f64x2.add (local.get $k2) (v128.const f64x2 6755399441055744 6755399441055744)) (v128.const i64x2 0x4338000000000000 0x4338000000000000)) (i32.const 52)))
        (local.set $k3 (i64x2.shl (i64x2.sub (f64x2.add (local.get $k3) (v128.const f64x2 6755399441055744 6755399441055744)) (v128.const i64x2 0x4338000000000000 0x4338000000000000)) (i32.const 52)))
        (local.set $p0 (v128.and (i64x2.add (local.get $p0) (local.get $k0)) (local.get $m0)))
        (local.set $p1 (v128.and (i64x2.add (local.get $p1) (local.get $k1)) (local.get $m1)))
        (local.set $p2 (v128.and (i64x2.add (local.get $p2) (local.get $k2)) (local.get $m2)))
        (local.set $p3 (v128.and (i64x2.add (local.get $p3) (local.get $k3)) (local.get $m3)))
        (v128.store offset=0 (local.get $dst) (local.get $p0))
        (v128.store offset=16 (local.get $dst) (local.get $p1))
        (v128.store offset=32 (local.get $dst) (local.get $p2))
        (v128.store offset=48 (local.get $dst) (local.get $p3))
        (local.set $acw (f64x2.add (local.get $acw)
          (f64x2.add (f64x2.add (f64x2.mul (local.get $p0) (local.get $y0)) (f64x2.mul (local.get $p1) (local.get $y1)))
            (f64x2.add (f64x2.mul (local.get $p2) (local.get $y2)) (f64x2.mul (local.get $p3) (local.get $y3))))))
        (local.set $acc (f64x2.add (local.get $acc)
          (f64x2.add (f64x2.add (local.get $p0) (local.get $p1)) (f64x2.add (local.get $p2) (local.get $p3)))))
        (local.set $src (i32.add (local.get $src) (i32.const 32)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
        (br $l8)))
    (local.set $s
      (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
    (local.set $sw
      (f64.add (f64x2.extract_lane 0 (local.get $acw)) (f64x2.extract_lane 1 (local.get $acw))))
    (block $dt
      (loop $lt
        (br_if $dt (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $x (f64.sub (f64.promote_f32 (f32.load (local.get $src))) (local.get $shift)))
        (local.set $e (call $vexp (f64x2.splat (local.get $x))))
        (f64.store (local.get $dst) (f64x2.extract_lane 0 (local.get $e)))
        (local.set $s (f64.add (local.get $s) (f64x2.extract_lane 0 (local.get $e))))
        (if (f64.gt (f64x2.extract_lane 0 (local.get $e)) (f64.const 0))
          (then (local.set $sw (f64.add (local.get $sw)
            (f64.mul (f64x2.extract_lane 0 (local.get $e)) (local.get $x))))))
        (local.set $src (i32.add (local.get $src) (i32.const 4)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 8)))
        (br $lt)))
    (f64.store (local.get $wsum) (local.get $sw))
    (local.get $s))

  ;; softmax_stats_f32: for z = src[0..n) (f32), stores as three f64 at $out: m = max z,
  ;; S = Σ exp(z_i − m) and W = Σ exp(z_i − m)·(z_i − m) (−∞ terms as 0); then log Z = m + log S and
  ;; H = log S − W/S. For the trace recorder's statistics of the model's own distribution, which
  ;; it stores as f32: e^x in f32 (≤ 2 ulp, tested), sums in f64; one read for the max, one for
  ;; the sums, no exponentials written. 8 floats per step as two f32x4 chains, interleaved.
  ;; x < −87.3 (−∞ included) gives 0, where the true value is below 1.2e-38.
  (func (export "softmax_stats_f32") (param $src i32) (param $n i32) (param $out i32)
    (local $end i32) (local $end8 i32) (local $p i32) (local $mv v128) (local $m f32) (local $sh v128)
    (local $acc v128) (local $acw v128) (local $s f64) (local $sw f64) (local $x f32) (local $e v128)
    (local $x0 v128) (local $k0 v128) (local $q0 v128) (local $y0 v128) (local $keep0 v128) (local $t0 v128)
    (local $x1 v128) (local $k1 v128) (local $q1 v128) (local $y1 v128) (local $keep1 v128) (local $t1 v128)
    (local.set $end (i32.add (local.get $src) (i32.shl (local.get $n) (i32.const 2))))
    (local.set $end8
      (i32.add (local.get $src) (i32.shl (i32.and (local.get $n) (i32.const -8)) (i32.const 2))))
    ;; the maximum: f32x4.max per 8 floats, then the lanes and the tail
    (local.set $mv (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $p (local.get $src))
    (block $dm
      (loop $lm
        (br_if $dm (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $mv (f32x4.pmax (local.get $mv)
          (f32x4.pmax (v128.load (local.get $p)) (v128.load offset=16 (local.get $p)))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br $lm)))
    (local.set $m (f32.max
      (f32.max (f32x4.extract_lane 0 (local.get $mv)) (f32x4.extract_lane 1 (local.get $mv)))
      (f32.max (f32x4.extract_lane 2 (local.get $mv)) (f32x4.extract_lane 3 (local.get $mv)))))
    (block $dmt
      (loop $lmt
        (br_if $dmt (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $m (f32.max (local.get $m) (f32.load (local.get $p))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $lmt)))
    (local.set $sh (f32x4.splat (local.get $m)))
    (local.set $acc (v128.const f64x2 0 0))
    (local.set $acw (v128.const f64x2 0 0))
    (local.set $p (local.get $src))
    (block $d8
      (loop $l8
        (br_if $d8 (i32.ge_u (local.get $p) (local.get $end8)))
        (local.set $x0 (f32x4.sub (v128.load offset=0 (local.get $p)) (local.get $sh)))
        (local.set $x1 (f32x4.sub (v128.load offset=16 (local.get $p)) (local.get $sh)))
        (local.set $keep0 (f32x4.ge (local.get $x0) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
        (local.set $keep1 (f32x4.ge (local.get $x1) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
        (local.set $x0 (f32x4.pmax (local.get $x0) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
        (local.set $x1 (f32x4.pmax (local.get $x1) (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
        (local.set $y0 (local.get $x0))
        (local.set $y1 (local.get $x1))
        (local.set $k0 (f32x4.add (f32x4.mul (local.get $x0) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504)) (v128.const f32x4 12582912 12582912 12582912 12582912)))
        (local.set $t0 (f32x4.sub (local.get $k0) (v128.const f32x4 12582912 12582912 12582912 12582912)))
        (local.set $k1 (f32x4.add (f32x4.mul (local.get $x1) (v128.const f32x4 1.44269504 1.44269504 1.44269504 1.44269504)) (v128.const f32x4 12582912 12582912 12582912 12582912)))
        (local.set $t1 (f32x4.sub (local.get $k1) (v128.const f32x4 12582912 12582912 12582912 12582912)))
        (local.set $x0 (f32x4.sub (local.get $x0) (f32x4.mul (local.get $t0) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
        (local.set $x1 (f32x4.sub (local.get $x1) (f32x4.mul (local.get $t1) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
        (local.set $x0 (f32x4.sub (local.get $x0) (f32x4.mul (local.get $t0) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
        (local.set $x1 (f32x4.sub (local.get $x1) (f32x4.mul (local.get $t1) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
        (local.set $q0 (v128.const f32x4 1.98412698e-4 1.98412698e-4 1.98412698e-4 1.98412698e-4))
        (local.set $q1 (v128.const f32x4 1.98412698e-4 1.98412698e-4 1.98412698e-4 1.98412698e-4))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 1.38888889e-3 1.38888889e-3 1.38888889e-3 1.38888889e-3)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 1.38888889e-3 1.38888889e-3 1.38888889e-3 1.38888889e-3)))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 8.33333333e-3 8.33333333e-3 8.33333333e-3 8.33333333e-3)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 8.33333333e-3 8.33333333e-3 8.33333333e-3 8.33333333e-3)))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 4.16666667e-2 4.16666667e-2 4.16666667e-2 4.16666667e-2)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 4.16666667e-2 4.16666667e-2 4.16666667e-2 4.16666667e-2)))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 1.66666667e-1 1.66666667e-1 1.66666667e-1 1.66666667e-1)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 1.66666667e-1 1.66666667e-1 1.66666667e-1 1.66666667e-1)))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 1.0 1.0 1.0 1.0)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 1.0 1.0 1.0 1.0)))
        (local.set $q0 (f32x4.add (f32x4.mul (local.get $q0) (local.get $x0)) (v128.const f32x4 1.0 1.0 1.0 1.0)))
        (local.set $q1 (f32x4.add (f32x4.mul (local.get $q1) (local.get $x1)) (v128.const f32x4 1.0 1.0 1.0 1.0)))
        (local.set $k0 (i32x4.shl (i32x4.add (local.get $k0) (v128.const i32x4 127 127 127 127)) (i32.const 23)))
        (local.set $k1 (i32x4.shl (i32x4.add (local.get $k1) (v128.const i32x4 127 127 127 127)) (i32.const 23)))
        (local.set $q0 (v128.and (f32x4.mul (local.get $q0) (local.get $k0)) (local.get $keep0)))
        (local.set $q1 (v128.and (f32x4.mul (local.get $q1) (local.get $k1)) (local.get $keep1)))
        (local.set $y0 (f32x4.mul (local.get $q0) (local.get $y0)))
        (local.set $y1 (f32x4.mul (local.get $q1) (local.get $y1)))
        (local.set $acc (f64x2.add (local.get $acc) (f64x2.add
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $q0)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $q0) (local.get $q0))))
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $q1)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $q1) (local.get $q1)))))))
        (local.set $acw (f64x2.add (local.get $acw) (f64x2.add
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $y0)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $y0) (local.get $y0))))
          (f64x2.add (f64x2.promote_low_f32x4 (local.get $y1)) (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $y1) (local.get $y1)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 32)))
        (br $l8)))
    (local.set $s
      (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
    (local.set $sw
      (f64.add (f64x2.extract_lane 0 (local.get $acw)) (f64x2.extract_lane 1 (local.get $acw))))
    ;; the tail, one float at a time through the f64 exponential
    (block $dt
      (loop $lt
        (br_if $dt (i32.ge_u (local.get $p) (local.get $end)))
        (local.set $x (f32.sub (f32.load (local.get $p)) (local.get $m)))
        (if (f32.ge (local.get $x) (f32.const -87.3))
          (then
            (local.set $e (call $vexp (f64x2.splat (f64.promote_f32 (local.get $x)))))
            (local.set $s (f64.add (local.get $s) (f64x2.extract_lane 0 (local.get $e))))
            (local.set $sw (f64.add (local.get $sw)
              (f64.mul (f64x2.extract_lane 0 (local.get $e)) (f64.promote_f32 (local.get $x)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 4)))
        (br $lt)))
    (f64.store (local.get $out) (f64.promote_f32 (local.get $m)))
    (f64.store offset=8 (local.get $out) (local.get $s))
    (f64.store offset=16 (local.get $out) (local.get $sw)))

  ;; e^x per lane for x ≤ 709: k = nearest(x·log2 e), r = x − k·ln2_hi − k·ln2_lo with fdlibm's
  ;; split of ln 2 (k·ln2_hi is exact), so |r| ≤ ln2/2 + ε; e^r by its Taylor polynomial of degree
  ;; 13 (truncation < 5e-18 relative) in Horner form; 2^k by adding k to the exponent field, k read
  ;; off the low mantissa bits of k + 1.5·2^52. Within 2 ulp of the correctly rounded value
  ;; (tested against Math.exp). x < −708 (−∞ included) gives 0, where the true value is a
  ;; subnormal below 3.3e-308.
  (func $vexp (param $x v128) (result v128)
    (local $keep v128) (local $k v128) (local $r v128) (local $p v128)
    (local.set $keep (f64x2.ge (local.get $x) (v128.const f64x2 -708 -708)))
    (local.set $x (f64x2.max (local.get $x) (v128.const f64x2 -708 -708)))
    (local.set $k (f64x2.nearest
      (f64x2.mul (local.get $x) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
    (local.set $r (f64x2.sub
      (f64x2.sub (local.get $x)
        (f64x2.mul (local.get $k) (v128.const f64x2 0.6931471803691238 0.6931471803691238)))
      (f64x2.mul (local.get $k) (v128.const f64x2 1.9082149292705877e-10 1.9082149292705877e-10))))
    (local.set $p (v128.const f64x2 1.6059043836821613e-10 1.6059043836821613e-10))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.08767569878681e-09 2.08767569878681e-09)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.505210838544172e-08 2.505210838544172e-08)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.755731922398589e-07 2.755731922398589e-07)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.7557319223985893e-06 2.7557319223985893e-06)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.48015873015873e-05 2.48015873015873e-05)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.0001984126984126984 0.0001984126984126984)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.001388888888888889 0.001388888888888889)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.008333333333333333 0.008333333333333333)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.041666666666666664 0.041666666666666664)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.16666666666666666 0.16666666666666666)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.5 0.5)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 1.0 1.0)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 1.0 1.0)))
    (local.set $k (i64x2.shl
      (i64x2.sub
        (f64x2.add (local.get $k) (v128.const f64x2 6755399441055744 6755399441055744))
        (v128.const i64x2 0x4338000000000000 0x4338000000000000))
      (i32.const 52)))
    (v128.and (i64x2.add (local.get $p) (local.get $k)) (local.get $keep)))

  ;; filter_gt_f32: writes to $out (i32 each), in increasing order, every index i in [0, n) with
  ;; src[i] > t, and returns how many. NaN is never > t. The trace recorder's top-k: with t the
  ;; k-th largest of a prefix, few entries pass, and a block of 8 with none passing costs two
  ;; compares and one any_true.
  (func (export "filter_gt_f32") (param $src i32) (param $n i32) (param $t f32) (param $out i32)
    (result i32)
    (local $tv v128) (local $i i32) (local $n8 i32) (local $c i32) (local $j i32) (local $a i32)
    (local.set $tv (f32x4.splat (local.get $t)))
    (local.set $n8 (i32.and (local.get $n) (i32.const -8)))
    (block $blocks_done
      (loop $blocks
        (br_if $blocks_done (i32.ge_u (local.get $i) (local.get $n8)))
        (local.set $a (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))
        (if (v128.any_true (v128.or
              (f32x4.gt (v128.load align=4 (local.get $a)) (local.get $tv))
              (f32x4.gt (v128.load offset=16 align=4 (local.get $a)) (local.get $tv))))
          (then
            (local.set $j (i32.const 0))
            (loop $lanes
              (if (f32.gt (f32.load (i32.add (local.get $a) (i32.shl (local.get $j) (i32.const 2))))
                          (local.get $t))
                (then
                  (i32.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2)))
                    (i32.add (local.get $i) (local.get $j)))
                  (local.set $c (i32.add (local.get $c) (i32.const 1)))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br_if $lanes (i32.lt_u (local.get $j) (i32.const 8))))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $blocks)))
    (block $tail_done
      (loop $tail
        (br_if $tail_done (i32.ge_u (local.get $i) (local.get $n)))
        (if (f32.gt (f32.load (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 2))))
                    (local.get $t))
          (then
            (i32.store (i32.add (local.get $out) (i32.shl (local.get $c) (i32.const 2)))
              (local.get $i))
            (local.set $c (i32.add (local.get $c) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $tail)))
    (local.get $c))

  ;; v[0] + v[1] + v[2] + v[3], as (v0 + v2) + (v1 + v3).
  (func $hsum (param $v v128) (result f32)
    (local.set $v (f32x4.add (local.get $v)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $v) (local.get $v))))
    (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v))))
)

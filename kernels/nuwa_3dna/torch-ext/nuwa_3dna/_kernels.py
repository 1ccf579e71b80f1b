"""Triton kernels of fused 3D Nearby Attention (3DNA): forward, dQ backward, dK/dV backward.

Notation (all grids are ``(frames, height, width)``, tokens in raster order ``(t * H + h) * W + w``):

* query grid ``(QT, QH, QW)``, key grid ``(KT, KH, KW)``;
* a query at ``(t, h, w)`` is centred at key ``(t * KT // QT, h * KH // QH, w * KW // QW)``;
* it may see the keys within ``half_t, half_h, half_w`` of that centre along each axis (a ``None`` extent is
  passed as a half-width equal to the key axis length, which covers the whole axis);
* with ``CAUSAL`` (query grid == key grid) additionally ``key raster <= query raster``.

Tiling. A program owns a *3D tile* of queries, ``TILE_T x TILE_H x TILE_W`` (= ``BLOCK_M`` slots), not a run of
raster-consecutive queries: the windows of a compact box of queries cover a compact box of keys, the *key box*,
whose size depends on the tile and the window only, never on the length of the key sequence. The program walks
that key box in ``BLOCK_N`` chunks (the box is flattened in raster order and each chunk's rows are gathered by
index, which costs nothing extra on a GPU: every row is a full contiguous ``head_dim`` vector). Nothing outside
the key box is ever loaded or multiplied. With ``CAUSAL`` the walk stops at the last key whose raster index does
not exceed the tile's last query: the flattened box is in raster order, so that is a prefix of the box whose length
is counted in closed form (``_count_box_le``).

The dK/dV kernel is the mirror image: a program owns a 3D tile of keys and walks the *query box* of queries
whose windows can reach it (the inverse window, ``_inverse_window``), again cut to a raster range for ``CAUSAL``
and for a query slice (``query_offset``).

Softmax is the online (flash) softmax in base 2: scores are pre-multiplied by ``scale * log2(e)``, and the
log-sum-exp saved for the backward pass is in the same base-2 units.
"""

import triton
import triton.language as tl

# Running maximum before any key has been seen. Finite on purpose: with -inf, a row whose first key chunk is
# entirely outside its window would compute exp2(-inf - -inf) = NaN for the rescaling factor.
_NEG_BIG = tl.constexpr(-1.0e30)


@triton.jit
def _count_box_le(last, lo_t, lo_h, lo_w, n_t, n_h, n_w, grid_h, grid_w):
    """Number of positions of the box ``[lo_t, lo_t+n_t) x [lo_h, lo_h+n_h) x [lo_w, lo_w+n_w)`` of a grid
    ``(., grid_h, grid_w)`` whose raster index is ``<= last`` (0 when ``last < 0``).

    Because raster order is lexicographic in (t, h, w), those positions are exactly a prefix of the box flattened
    in raster order, so this count is also where a raster-bounded walk over the box stops.
    """
    # Integer division truncates towards zero in Triton, so negative indices are handled separately.
    safe = tl.maximum(last, 0)
    last_t = safe // (grid_h * grid_w)
    last_h = (safe // grid_w) % grid_h
    last_w = safe % grid_w
    count = tl.minimum(tl.maximum(last_t - lo_t, 0), n_t) * n_h * n_w
    t_inside = (last_t >= lo_t) & (last_t < lo_t + n_t)
    h_inside = (last_h >= lo_h) & (last_h < lo_h + n_h)
    count += tl.where(t_inside, tl.minimum(tl.maximum(last_h - lo_h, 0), n_h) * n_w, 0)
    count += tl.where(t_inside & h_inside, tl.minimum(tl.maximum(last_w - lo_w + 1, 0), n_w), 0)
    return tl.where(last < 0, 0, count)


@triton.jit
def _key_window(first, last, q_size, k_size, half):
    """Key coordinates ``[lo, lo + n)`` seen along one axis by the query coordinates ``first..last``."""
    # The centre floor(q * K / Q) is non-decreasing in q, so the first and last query bound the union.
    lo = tl.maximum((first * k_size) // q_size - half, 0)
    hi = tl.minimum((last * k_size) // q_size + half, k_size - 1)
    return lo, hi - lo + 1


@triton.jit
def _inverse_window(first, last, q_size, k_size, half):
    """Query coordinates ``[lo, lo + n)`` whose windows reach a key coordinate in ``first..last`` along one axis."""
    # q sees k iff |k - floor(q*K/Q)| <= half, i.e. its centre lies in [first - half, last + half].
    # Smallest q with floor(q*K/Q) >= a is ceil(a*Q/K); largest q with floor(q*K/Q) <= b is ceil((b+1)*Q/K) - 1.
    a = tl.maximum(first - half, 0)
    b = tl.minimum(last + half, k_size - 1)
    lo = (a * q_size + k_size - 1) // k_size
    hi = tl.minimum(((b + 1) * q_size + k_size - 1) // k_size - 1, q_size - 1)
    return lo, tl.maximum(hi - lo + 1, 0)


@triton.jit
def _tile_origin(tile, n_tiles_h, n_tiles_w, TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr):
    tile_w = tile % n_tiles_w
    tile_h = (tile // n_tiles_w) % n_tiles_h
    tile_t = tile // (n_tiles_w * n_tiles_h)
    return tile_t * TILE_T, tile_h * TILE_H, tile_w * TILE_W


@triton.jit
def _in_range(coord, first, span):
    """``first <= coord < first + span`` with one subtraction and one unsigned compare (a negative difference wraps
    to a huge unsigned value); the masks below run this for every (query, key) pair, so it matters."""
    # tl.cast, not .to: the JIT turns integer arguments equal to 1 into Python constants (half=1 for a 3x3x3 window).
    return tl.cast(coord - first, tl.uint32) < tl.cast(span, tl.uint32)


@triton.jit
def _allowed(first_t, first_h, first_w, q_raster, q_valid, k_t, k_h, k_w, k_raster, k_valid,
             span_t, span_h, span_w, CAUSAL: tl.constexpr):
    """(BLOCK_M, BLOCK_N) 3DNA mask, queries (rows) x keys (columns).

    ``first_*`` is each query's first window coordinate (centre - half) per axis, ``span_* = 2 * half + 1``. The
    window is not clipped here: keys outside the grid never reach the mask, so clipping would change nothing.
    """
    ok = q_valid[:, None] & k_valid[None, :]
    ok &= _in_range(k_t[None, :], first_t[:, None], span_t)
    ok &= _in_range(k_h[None, :], first_h[:, None], span_h)
    ok &= _in_range(k_w[None, :], first_w[:, None], span_w)
    if CAUSAL:
        ok &= k_raster[None, :] <= q_raster[:, None]
    return ok


@triton.jit
def _allowed_transposed(q_t, q_h, q_w, q_raster, q_valid, first_t, first_h, first_w, span_t, span_h, span_w,
                        k_raster, k_valid, CAUSAL: tl.constexpr):
    """(BLOCK_N, BLOCK_M) 3DNA mask, keys (rows) x queries (columns), by inverse windows.

    ``first_*``/``span_*`` are, per key, the range of query coordinates whose windows contain it (see
    ``_inverse_window``): the same relation as ``_allowed`` seen from the key, with nothing to recompute per query.
    """
    ok = k_valid[:, None] & q_valid[None, :]
    ok &= _in_range(q_t[None, :], first_t[:, None], span_t[:, None])
    ok &= _in_range(q_h[None, :], first_h[:, None], span_h[:, None])
    ok &= _in_range(q_w[None, :], first_w[:, None], span_w[:, None])
    if CAUSAL:
        ok &= k_raster[:, None] <= q_raster[None, :]
    return ok


@triton.jit
def _window_firsts(q_t, q_h, q_w, QT, QH, QW, KT, KH, KW, half_t, half_h, half_w):
    """First key coordinate of each query's window per axis (centre - half, unclipped), computed once per program."""
    return (q_t * KT) // QT - half_t, (q_h * KH) // QH - half_h, (q_w * KW) // QW - half_w


@triton.jit
def _query_tile_setup(tile, n_tiles_h, n_tiles_w, q_offset, num_queries, num_keys,
                      QT, QH, QW, KT, KH, KW, half_t, half_h, half_w,
                      TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr,
                      CAUSAL: tl.constexpr):
    """Queries of one query tile and the key box their windows cover (shared by the forward and dQ kernels)."""
    t0, h0, w0 = _tile_origin(tile, n_tiles_h, n_tiles_w, TILE_T, TILE_H, TILE_W)
    t1 = tl.minimum(t0 + TILE_T, QT) - 1
    h1 = tl.minimum(h0 + TILE_H, QH) - 1
    w1 = tl.minimum(w0 + TILE_W, QW) - 1
    slot = tl.arange(0, BLOCK_M)
    q_t = t0 + slot // (TILE_H * TILE_W)
    q_h = h0 + (slot // TILE_W) % TILE_H
    q_w = w0 + slot % TILE_W
    q_raster = (q_t * QH + q_h) * QW + q_w
    q_row = q_raster - q_offset
    q_valid = (q_t < QT) & (q_h < QH) & (q_w < QW) & (q_row >= 0) & (q_row < num_queries)

    box_t, n_t = _key_window(t0, t1, QT, KT, half_t)
    box_h, n_h = _key_window(h0, h1, QH, KH, half_h)
    box_w, n_w = _key_window(w0, w1, QW, KW, half_w)
    # Walk the box up to its raster-ordered prefix of keys that exist (a causal KV cache may hold only a prefix of
    # the grid) and, when causal, that the tile's last query may see.
    last_key = num_keys - 1
    if CAUSAL:
        last_query = tl.minimum((t1 * QH + h1) * QW + w1, q_offset + num_queries - 1)
        last_key = tl.minimum(last_key, last_query)
    n_box = _count_box_le(last_key, box_t, box_h, box_w, n_t, n_h, n_w, KH, KW)
    # A tile holding none of the requested queries (query_offset slices) has nothing to do.
    first_raster = (t0 * QH + h0) * QW + w0
    last_raster = (t1 * QH + h1) * QW + w1
    n_box = tl.where((last_raster < q_offset) | (first_raster >= q_offset + num_queries), 0, n_box)
    return q_t, q_h, q_w, q_raster, q_row, q_valid, box_t, box_h, box_w, n_h, n_w, n_box


@triton.jit
def _box_walk_start(start, n_h, n_w, BLOCK: tl.constexpr):
    """Box-relative coordinates of positions ``start .. start+BLOCK-1`` of a box flattened in raster order, and the
    per-axis step that advancing all of them by ``BLOCK`` positions makes.

    The divisions happen once per program; ``_box_walk_advance`` then moves the coordinates with two carries, which
    is what keeps integer work out of the inner loop (runtime divisions are ~10 instructions per element).
    """
    j = start + tl.arange(0, BLOCK)
    c_t = j // (n_h * n_w)
    c_h = (j // n_w) % n_h
    c_w = j % n_w
    step_t = BLOCK // (n_h * n_w)
    step_h = (BLOCK // n_w) % n_h
    step_w = BLOCK % n_w
    return c_t, c_h, c_w, step_t, step_h, step_w


@triton.jit
def _box_walk_advance(c_t, c_h, c_w, step_t, step_h, step_w, n_h, n_w):
    # c_w, step_w < n_w and c_h, step_h < n_h, so each axis wraps at most once.
    c_w += step_w
    carry = c_w >= n_w
    c_w = tl.where(carry, c_w - n_w, c_w)
    c_h += step_h + carry.to(tl.int32)
    carry = c_h >= n_h
    c_h = tl.where(carry, c_h - n_h, c_h)
    c_t += step_t + carry.to(tl.int32)
    return c_t, c_h, c_w


@triton.jit
def _nearby_attention_fwd_kernel(
    Q, K, V, O, LSE, VISITS,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_om, stride_od,
    num_heads, num_queries, num_keys, q_offset,
    QT, QH, QW, KT, KH, KW,
    half_t, half_h, half_w,
    n_tiles_h, n_tiles_w, first_tile,
    scale_log2,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, COUNT_VISITS: tl.constexpr,
):
    """One program: one query tile of one (batch, head). Writes O rows and the base-2 log-sum-exp ``LSE``."""
    # Programs are launched for the tiles from ``first_tile`` on: the frames holding the requested queries.
    tile = tl.program_id(0) + first_tile
    batch_head = tl.program_id(1)
    b = (batch_head // num_heads).to(tl.int64)
    h = (batch_head % num_heads).to(tl.int64)
    q_t, q_h, q_w, q_raster, q_row, q_valid, box_t, box_h, box_w, n_h, n_w, n_box = _query_tile_setup(
        tile, n_tiles_h, n_tiles_w, q_offset, num_queries, num_keys, QT, QH, QW, KT, KH, KW,
        half_t, half_h, half_w, TILE_T, TILE_H, TILE_W, BLOCK_M, CAUSAL)

    d = tl.arange(0, BLOCK_D)
    d_ok = d < HEAD_DIM
    q = tl.load(Q + b * stride_qb + h * stride_qh + q_row[:, None] * stride_qm + d[None, :] * stride_qd,
                mask=q_valid[:, None] & d_ok[None, :], other=0.0)
    K += b * stride_kb + h * stride_kh
    V += b * stride_vb + h * stride_vh

    m_i = tl.full([BLOCK_M], _NEG_BIG, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    visits = 0
    first_t, first_h, first_w = _window_firsts(q_t, q_h, q_w, QT, QH, QW, KT, KH, KW, half_t, half_h, half_w)
    c_t, c_h, c_w, step_t, step_h, step_w = _box_walk_start(0, n_h, n_w, BLOCK_N)
    for start in range(0, n_box, BLOCK_N):
        k_t, k_h, k_w = box_t + c_t, box_h + c_h, box_w + c_w
        k_raster = (k_t * KH + k_h) * KW + k_w
        k_valid = start + tl.arange(0, BLOCK_N) < n_box
        kv_mask = k_valid[:, None] & d_ok[None, :]
        k = tl.load(K + k_raster[:, None] * stride_kn + d[None, :] * stride_kd, mask=kv_mask, other=0.0)
        v = tl.load(V + k_raster[:, None] * stride_vn + d[None, :] * stride_vd, mask=kv_mask, other=0.0)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * scale_log2
        ok = _allowed(first_t, first_h, first_w, q_raster, q_valid, k_t, k_h, k_w, k_raster, k_valid,
                      2 * half_t + 1, 2 * half_h + 1, 2 * half_w + 1, CAUSAL)
        scores = tl.where(ok, scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))
        p = tl.exp2(scores - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
        visits += 1
        c_t, c_h, c_w = _box_walk_advance(c_t, c_h, c_w, step_t, step_h, step_w, n_h, n_w)

    # Every real query sees at least its own centre key, so l_i > 0 for valid rows; padded rows are not stored.
    l_safe = tl.where(l_i > 0, l_i, 1.0)
    out = acc / l_safe[:, None]
    tl.store(O + b * stride_ob + h * stride_oh + q_row[:, None] * stride_om + d[None, :] * stride_od,
             out.to(O.dtype.element_ty), mask=q_valid[:, None] & d_ok[None, :])
    tl.store(LSE + batch_head.to(tl.int64) * num_queries + q_row, m_i + tl.log2(l_safe), mask=q_valid)
    if COUNT_VISITS:
        tl.store(VISITS + batch_head * tl.num_programs(0) + tl.program_id(0), visits)


@triton.jit
def _nearby_attention_bwd_dq_kernel(
    Q, K, V, DO, LSE, DELTA, DQ,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_dom, stride_dod,
    stride_dqb, stride_dqh, stride_dqm, stride_dqd,
    num_heads, num_queries, num_keys, q_offset,
    QT, QH, QW, KT, KH, KW,
    half_t, half_h, half_w,
    n_tiles_h, n_tiles_w, first_tile,
    scale, scale_log2,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    """dQ = scale * sum_keys P * (dP - delta) K, over the same key box as the forward pass (no atomics)."""
    tile = tl.program_id(0) + first_tile
    batch_head = tl.program_id(1)
    b = (batch_head // num_heads).to(tl.int64)
    h = (batch_head % num_heads).to(tl.int64)
    q_t, q_h, q_w, q_raster, q_row, q_valid, box_t, box_h, box_w, n_h, n_w, n_box = _query_tile_setup(
        tile, n_tiles_h, n_tiles_w, q_offset, num_queries, num_keys, QT, QH, QW, KT, KH, KW,
        half_t, half_h, half_w, TILE_T, TILE_H, TILE_W, BLOCK_M, CAUSAL)

    d = tl.arange(0, BLOCK_D)
    d_ok = d < HEAD_DIM
    row_mask = q_valid[:, None] & d_ok[None, :]
    q = tl.load(Q + b * stride_qb + h * stride_qh + q_row[:, None] * stride_qm + d[None, :] * stride_qd,
                mask=row_mask, other=0.0)
    do = tl.load(DO + b * stride_dob + h * stride_doh + q_row[:, None] * stride_dom + d[None, :] * stride_dod,
                 mask=row_mask, other=0.0)
    lse = tl.load(LSE + batch_head.to(tl.int64) * num_queries + q_row, mask=q_valid, other=0.0)
    delta = tl.load(DELTA + batch_head.to(tl.int64) * num_queries + q_row, mask=q_valid, other=0.0)
    K += b * stride_kb + h * stride_kh
    V += b * stride_vb + h * stride_vh

    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)
    first_t, first_h, first_w = _window_firsts(q_t, q_h, q_w, QT, QH, QW, KT, KH, KW, half_t, half_h, half_w)
    c_t, c_h, c_w, step_t, step_h, step_w = _box_walk_start(0, n_h, n_w, BLOCK_N)
    for start in range(0, n_box, BLOCK_N):
        k_t, k_h, k_w = box_t + c_t, box_h + c_h, box_w + c_w
        k_raster = (k_t * KH + k_h) * KW + k_w
        k_valid = start + tl.arange(0, BLOCK_N) < n_box
        kv_mask = k_valid[:, None] & d_ok[None, :]
        k = tl.load(K + k_raster[:, None] * stride_kn + d[None, :] * stride_kd, mask=kv_mask, other=0.0)
        v = tl.load(V + k_raster[:, None] * stride_vn + d[None, :] * stride_vd, mask=kv_mask, other=0.0)
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * scale_log2
        ok = _allowed(first_t, first_h, first_w, q_raster, q_valid, k_t, k_h, k_w, k_raster, k_valid,
                      2 * half_t + 1, 2 * half_h + 1, 2 * half_w + 1, CAUSAL)
        p = tl.where(ok, tl.exp2(scores - lse[:, None]), 0.0)
        dp = tl.dot(do, tl.trans(v), input_precision=DOT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=DOT_PRECISION)
        c_t, c_h, c_w = _box_walk_advance(c_t, c_h, c_w, step_t, step_h, step_w, n_h, n_w)

    tl.store(DQ + b * stride_dqb + h * stride_dqh + q_row[:, None] * stride_dqm + d[None, :] * stride_dqd,
             (dq * scale).to(DQ.dtype.element_ty), mask=row_mask)


@triton.jit
def _nearby_attention_bwd_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV, VISITS,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_dom, stride_dod,
    stride_dkb, stride_dkh, stride_dkn, stride_dkd,
    stride_dvb, stride_dvh, stride_dvn, stride_dvd,
    num_heads, num_queries, num_keys, q_offset,
    QT, QH, QW, KT, KH, KW,
    half_t, half_h, half_w,
    n_tiles_h, n_tiles_w,
    scale, scale_log2,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, COUNT_VISITS: tl.constexpr,
):
    """One program: one key tile (``TILE_* `` over the key grid, ``BLOCK_N`` slots) of one (batch, head).

    dV = sum_queries P^T dO and dK = scale * sum_queries dS^T Q over the query box of the tile (inverse windows).
    """
    tile = tl.program_id(0)
    batch_head = tl.program_id(1)
    b = (batch_head // num_heads).to(tl.int64)
    h = (batch_head % num_heads).to(tl.int64)
    t0, h0, w0 = _tile_origin(tile, n_tiles_h, n_tiles_w, TILE_T, TILE_H, TILE_W)
    t1 = tl.minimum(t0 + TILE_T, KT) - 1
    h1 = tl.minimum(h0 + TILE_H, KH) - 1
    w1 = tl.minimum(w0 + TILE_W, KW) - 1
    slot = tl.arange(0, BLOCK_N)
    k_t = t0 + slot // (TILE_H * TILE_W)
    k_h = h0 + (slot // TILE_W) % TILE_H
    k_w = w0 + slot % TILE_W
    k_raster = (k_t * KH + k_h) * KW + k_w
    k_valid = (k_t < KT) & (k_h < KH) & (k_w < KW) & (k_raster < num_keys)

    box_t, n_t = _inverse_window(t0, t1, QT, KT, half_t)
    box_h, n_h = _inverse_window(h0, h1, QH, KH, half_h)
    box_w, n_w = _inverse_window(w0, w1, QW, KW, half_w)
    # Only queries q_offset .. q_offset+num_queries-1 exist, and a causal query must not precede the tile's first
    # key: both cut the raster-ordered query box to a contiguous range of its flattening.
    first_query = q_offset
    if CAUSAL:
        first_query = tl.maximum(first_query, (t0 * KH + h0) * KW + w0)
    box_start = _count_box_le(first_query - 1, box_t, box_h, box_w, n_t, n_h, n_w, QH, QW)
    box_end = _count_box_le(q_offset + num_queries - 1, box_t, box_h, box_w, n_t, n_h, n_w, QH, QW)
    # Key tiles lying entirely past a causal KV-cache prefix have no keys to differentiate.
    box_end = tl.where((t0 * KH + h0) * KW + w0 >= num_keys, 0, box_end)

    d = tl.arange(0, BLOCK_D)
    d_ok = d < HEAD_DIM
    kv_mask = k_valid[:, None] & d_ok[None, :]
    k = tl.load(K + b * stride_kb + h * stride_kh + k_raster[:, None] * stride_kn + d[None, :] * stride_kd,
                mask=kv_mask, other=0.0)
    v = tl.load(V + b * stride_vb + h * stride_vh + k_raster[:, None] * stride_vn + d[None, :] * stride_vd,
                mask=kv_mask, other=0.0)
    Q += b * stride_qb + h * stride_qh
    DO += b * stride_dob + h * stride_doh
    LSE += batch_head.to(tl.int64) * num_queries
    DELTA += batch_head.to(tl.int64) * num_queries

    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    visits = 0
    # Per key, the query coordinates whose windows contain it: loop-invariant, so the mask costs no division.
    first_t, span_t = _inverse_window(k_t, k_t, QT, KT, half_t)
    first_h, span_h = _inverse_window(k_h, k_h, QH, KH, half_h)
    first_w, span_w = _inverse_window(k_w, k_w, QW, KW, half_w)
    c_t, c_h, c_w, step_t, step_h, step_w = _box_walk_start(box_start, n_h, n_w, BLOCK_M)
    for start in range(box_start, box_end, BLOCK_M):
        q_t, q_h, q_w = box_t + c_t, box_h + c_h, box_w + c_w
        q_raster = (q_t * QH + q_h) * QW + q_w
        q_row = q_raster - q_offset
        q_valid = (start + tl.arange(0, BLOCK_M) < box_end) & (q_row >= 0) & (q_row < num_queries)
        row_mask = q_valid[:, None] & d_ok[None, :]
        q = tl.load(Q + q_row[:, None] * stride_qm + d[None, :] * stride_qd, mask=row_mask, other=0.0)
        do = tl.load(DO + q_row[:, None] * stride_dom + d[None, :] * stride_dod, mask=row_mask, other=0.0)
        lse = tl.load(LSE + q_row, mask=q_valid, other=0.0)
        delta = tl.load(DELTA + q_row, mask=q_valid, other=0.0)
        # Keys x queries orientation: P^T and dS^T come straight out of the products, so the two big operands
        # of the accumulating dots need no transpose (a transpose of an fp32 register tile spills to local memory).
        scores_t = tl.dot(k, tl.trans(q), input_precision=DOT_PRECISION) * scale_log2
        ok_t = _allowed_transposed(q_t, q_h, q_w, q_raster, q_valid, first_t, first_h, first_w,
                                   span_t, span_h, span_w, k_raster, k_valid, CAUSAL)
        p_t = tl.where(ok_t, tl.exp2(scores_t - lse[None, :]), 0.0)
        dv += tl.dot(p_t.to(do.dtype), do, input_precision=DOT_PRECISION)
        dp_t = tl.dot(v, tl.trans(do), input_precision=DOT_PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += tl.dot(ds_t.to(q.dtype), q, input_precision=DOT_PRECISION)
        visits += 1
        c_t, c_h, c_w = _box_walk_advance(c_t, c_h, c_w, step_t, step_h, step_w, n_h, n_w)

    tl.store(DK + b * stride_dkb + h * stride_dkh + k_raster[:, None] * stride_dkn + d[None, :] * stride_dkd,
             (dk * scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + b * stride_dvb + h * stride_dvh + k_raster[:, None] * stride_dvn + d[None, :] * stride_dvd,
             dv.to(DV.dtype.element_ty), mask=kv_mask)
    if COUNT_VISITS:
        tl.store(VISITS + batch_head * tl.num_programs(0) + tile, visits)

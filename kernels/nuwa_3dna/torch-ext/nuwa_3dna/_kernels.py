"""Triton kernels of fused 3D Nearby Attention (3DNA): forward, dQ backward, dK/dV backward.

Notation (all grids are ``(frames, height, width)``, tokens in raster order ``(t * H + h) * W + w``):

* query grid ``(QT, QH, QW)``, key grid ``(KT, KH, KW)``;
* a query at ``(t, h, w)`` is centred at key ``(t * KT // QT, h * KH // QH, w * KW // QW)``;
* it may see the keys within ``half_t, half_h, half_w`` of that centre along each axis (a ``None`` extent is
  passed as a half-width equal to the key axis length, which covers the whole axis);
* with ``CAUSAL`` (query grid == key grid) additionally ``key raster <= query raster``.

Tiling and the plan. A program owns a *3D tile* of queries, ``TILE_T x TILE_H x TILE_W`` (= ``BLOCK_M`` slots), not
a run of raster-consecutive queries. Which keys it must see is known before launch: the host builds a *tile plan*
(``_tile_plan.py``, cached per grids, window, causal and tile shape) listing, for each query tile, exactly the keys
that at least one of its queries may see (the union of its windows, causally cut), packed as ``t << 20 | h << 10 | w``
in raster order. The program walks its list in ``BLOCK_N`` chunks, gathering the rows by index (every row is a full
contiguous ``head_dim`` vector). Nothing the window forbids for the whole tile is loaded or multiplied; the per-pair
mask (``_allowed``) only separates the queries of the tile from each other.

The dK/dV kernel is the mirror image: a program owns a 3D tile of keys and walks the transposed plan, the queries
whose windows reach the tile (cut to the query slice of ``query_offset`` by masking).

Blocks of at least 16 on every side multiply on tensor cores (``tl.dot``); smaller blocks (whose plans waste the
fewest pairs) multiply on CUDA cores (``_mm``).

Softmax is the online (flash) softmax in base 2: scores are pre-multiplied by ``scale * log2(e)``, and the
log-sum-exp saved for the backward pass is in the same base-2 units.
"""

import triton
import triton.language as tl

# Running maximum before any key has been seen. Finite on purpose: with -inf, a row whose first key chunk is
# entirely outside its window would compute exp2(-inf - -inf) = NaN for the rescaling factor.
_NEG_BIG = tl.constexpr(-1.0e30)


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
def _mm(a, b, USE_DOT: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """``a @ b`` in float32: tensor cores when every block dimension is >= 16, else products summed on CUDA cores
    (small tiles, whose plans waste the fewest pairs)."""
    if USE_DOT:
        out = tl.dot(a, b, input_precision=DOT_PRECISION)
    else:
        out = tl.sum(a.to(tl.float32)[:, :, None] * b.to(tl.float32)[None, :, :], 1)
    return out


@triton.jit
def _unpack(packed):
    """Grid coordinates of tile-plan entries packed as ``t << 20 | h << 10 | w`` (see _tile_plan.packed)."""
    return packed >> 20, (packed >> 10) & 1023, packed & 1023


@triton.jit
def _window_firsts(q_t, q_h, q_w, QT, QH, QW, KT, KH, KW, half_t, half_h, half_w):
    """First key coordinate of each query's window per axis (centre - half, unclipped), computed once per program."""
    return (q_t * KT) // QT - half_t, (q_h * KH) // QH - half_h, (q_w * KW) // QW - half_w


@triton.jit
def _query_tile_setup(tile, n_tiles_h, n_tiles_w, q_offset, num_queries, KV_NUM, QT, QH, QW,
                      TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr):
    """Queries of one query tile and the length of its key list in the plan (shared by the forward and dQ kernels)."""
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
    n_keys = tl.load(KV_NUM + tile)
    # A tile holding none of the requested queries (query_offset slices) has nothing to do.
    first_raster = (t0 * QH + h0) * QW + w0
    last_raster = (t1 * QH + h1) * QW + w1
    n_keys = tl.where((last_raster < q_offset) | (first_raster >= q_offset + num_queries), 0, n_keys)
    return q_t, q_h, q_w, q_raster, q_row, q_valid, n_keys


@triton.jit
def _plan_keys(KV_IDX, tile, kv_width, start, n_keys, num_keys, KH, KW, BLOCK_N: tl.constexpr):
    """Keys ``start .. start+BLOCK_N-1`` of a query tile's list in the plan: coordinates, raster index, validity."""
    j = start + tl.arange(0, BLOCK_N)
    k_valid = j < n_keys
    k_t, k_h, k_w = _unpack(tl.load(KV_IDX + tile.to(tl.int64) * kv_width + j, mask=k_valid, other=0))
    k_raster = (k_t * KH + k_h) * KW + k_w
    # A causal KV cache may hold only a prefix of the key grid.
    return k_t, k_h, k_w, k_raster, k_valid & (k_raster < num_keys)


@triton.jit
def _nearby_attention_fwd_kernel(
    Q, K, V, O, LSE, VISITS, KV_NUM, KV_IDX,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_ob, stride_oh, stride_om, stride_od,
    num_heads, num_queries, num_keys, q_offset,
    QT, QH, QW, KT, KH, KW,
    half_t, half_h, half_w,
    n_tiles_h, n_tiles_w, first_tile, kv_width,
    scale_log2,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, COUNT_VISITS: tl.constexpr, USE_DOT: tl.constexpr,
):
    """One program: one query tile of one (batch, head), walking the keys its plan lists. Writes O rows and the
    base-2 log-sum-exp ``LSE``."""
    # Programs are launched for the tiles from ``first_tile`` on: the frames holding the requested queries.
    tile = tl.program_id(0) + first_tile
    batch_head = tl.program_id(1)
    b = (batch_head // num_heads).to(tl.int64)
    h = (batch_head % num_heads).to(tl.int64)
    q_t, q_h, q_w, q_raster, q_row, q_valid, n_keys = _query_tile_setup(
        tile, n_tiles_h, n_tiles_w, q_offset, num_queries, KV_NUM, QT, QH, QW, TILE_T, TILE_H, TILE_W, BLOCK_M)

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
    for start in range(0, n_keys, BLOCK_N):
        k_t, k_h, k_w, k_raster, k_valid = _plan_keys(KV_IDX, tile, kv_width, start, n_keys, num_keys, KH, KW,
                                                      BLOCK_N)
        kv_mask = k_valid[:, None] & d_ok[None, :]
        k = tl.load(K + k_raster[:, None] * stride_kn + d[None, :] * stride_kd, mask=kv_mask, other=0.0)
        v = tl.load(V + k_raster[:, None] * stride_vn + d[None, :] * stride_vd, mask=kv_mask, other=0.0)
        scores = _mm(q, tl.trans(k), USE_DOT, DOT_PRECISION) * scale_log2
        ok = _allowed(first_t, first_h, first_w, q_raster, q_valid, k_t, k_h, k_w, k_raster, k_valid,
                      2 * half_t + 1, 2 * half_h + 1, 2 * half_w + 1, CAUSAL)
        scores = tl.where(ok, scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))
        p = tl.exp2(scores - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + _mm(p.to(v.dtype), v, USE_DOT, DOT_PRECISION)
        m_i = m_new
        visits += 1

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
    Q, K, V, DO, LSE, DELTA, DQ, KV_NUM, KV_IDX,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_dom, stride_dod,
    stride_dqb, stride_dqh, stride_dqm, stride_dqd,
    num_heads, num_queries, num_keys, q_offset,
    QT, QH, QW, KT, KH, KW,
    half_t, half_h, half_w,
    n_tiles_h, n_tiles_w, first_tile, kv_width,
    scale, scale_log2,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, USE_DOT: tl.constexpr,
):
    """dQ = scale * sum_keys P * (dP - delta) K, over the same plan as the forward pass (no atomics)."""
    tile = tl.program_id(0) + first_tile
    batch_head = tl.program_id(1)
    b = (batch_head // num_heads).to(tl.int64)
    h = (batch_head % num_heads).to(tl.int64)
    q_t, q_h, q_w, q_raster, q_row, q_valid, n_keys = _query_tile_setup(
        tile, n_tiles_h, n_tiles_w, q_offset, num_queries, KV_NUM, QT, QH, QW, TILE_T, TILE_H, TILE_W, BLOCK_M)

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
    for start in range(0, n_keys, BLOCK_N):
        k_t, k_h, k_w, k_raster, k_valid = _plan_keys(KV_IDX, tile, kv_width, start, n_keys, num_keys, KH, KW,
                                                      BLOCK_N)
        kv_mask = k_valid[:, None] & d_ok[None, :]
        k = tl.load(K + k_raster[:, None] * stride_kn + d[None, :] * stride_kd, mask=kv_mask, other=0.0)
        v = tl.load(V + k_raster[:, None] * stride_vn + d[None, :] * stride_vd, mask=kv_mask, other=0.0)
        scores = _mm(q, tl.trans(k), USE_DOT, DOT_PRECISION) * scale_log2
        ok = _allowed(first_t, first_h, first_w, q_raster, q_valid, k_t, k_h, k_w, k_raster, k_valid,
                      2 * half_t + 1, 2 * half_h + 1, 2 * half_w + 1, CAUSAL)
        p = tl.where(ok, tl.exp2(scores - lse[:, None]), 0.0)
        dp = _mm(do, tl.trans(v), USE_DOT, DOT_PRECISION)
        ds = p * (dp - delta[:, None])
        dq += _mm(ds.to(k.dtype), k, USE_DOT, DOT_PRECISION)

    tl.store(DQ + b * stride_dqb + h * stride_dqh + q_row[:, None] * stride_dqm + d[None, :] * stride_dqd,
             (dq * scale).to(DQ.dtype.element_ty), mask=row_mask)


@triton.jit
def _nearby_attention_bwd_dkdv_kernel(
    Q, K, V, DO, LSE, DELTA, DK, DV, VISITS, Q_NUM, Q_IDX,
    stride_qb, stride_qh, stride_qm, stride_qd,
    stride_kb, stride_kh, stride_kn, stride_kd,
    stride_vb, stride_vh, stride_vn, stride_vd,
    stride_dob, stride_doh, stride_dom, stride_dod,
    stride_dkb, stride_dkh, stride_dkn, stride_dkd,
    stride_dvb, stride_dvh, stride_dvn, stride_dvd,
    num_heads, num_queries, num_keys, q_offset,
    QT, QH, QW, KT, KH, KW,
    half_t, half_h, half_w,
    n_tiles_h, n_tiles_w, q_width,
    scale, scale_log2,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr,
    TILE_T: tl.constexpr, TILE_H: tl.constexpr, TILE_W: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr, COUNT_VISITS: tl.constexpr, USE_DOT: tl.constexpr,
):
    """One program: one key tile (``TILE_* `` over the key grid, ``BLOCK_N`` slots) of one (batch, head).

    dV = sum_queries P^T dO and dK = scale * sum_queries dS^T Q over the queries the transposed plan lists for the
    tile (those whose windows reach it).
    """
    tile = tl.program_id(0)
    batch_head = tl.program_id(1)
    b = (batch_head // num_heads).to(tl.int64)
    h = (batch_head % num_heads).to(tl.int64)
    t0, h0, w0 = _tile_origin(tile, n_tiles_h, n_tiles_w, TILE_T, TILE_H, TILE_W)
    slot = tl.arange(0, BLOCK_N)
    k_t = t0 + slot // (TILE_H * TILE_W)
    k_h = h0 + (slot // TILE_W) % TILE_H
    k_w = w0 + slot % TILE_W
    k_raster = (k_t * KH + k_h) * KW + k_w
    k_valid = (k_t < KT) & (k_h < KH) & (k_w < KW) & (k_raster < num_keys)
    n_queries = tl.load(Q_NUM + tile)
    # Key tiles lying entirely past a causal KV-cache prefix have no keys to differentiate.
    n_queries = tl.where((t0 * KH + h0) * KW + w0 >= num_keys, 0, n_queries)

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
    Q_IDX += tile.to(tl.int64) * q_width

    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    visits = 0
    # Per key, the query coordinates whose windows contain it: loop-invariant, so the mask costs no division.
    first_t, span_t = _inverse_window(k_t, k_t, QT, KT, half_t)
    first_h, span_h = _inverse_window(k_h, k_h, QH, KH, half_h)
    first_w, span_w = _inverse_window(k_w, k_w, QW, KW, half_w)
    for start in range(0, n_queries, BLOCK_M):
        j = start + tl.arange(0, BLOCK_M)
        listed = j < n_queries
        q_t, q_h, q_w = _unpack(tl.load(Q_IDX + j, mask=listed, other=0))
        q_raster = (q_t * QH + q_h) * QW + q_w
        q_row = q_raster - q_offset
        # Only queries q_offset .. q_offset+num_queries-1 exist (query slices).
        q_valid = listed & (q_row >= 0) & (q_row < num_queries)
        row_mask = q_valid[:, None] & d_ok[None, :]
        q = tl.load(Q + q_row[:, None] * stride_qm + d[None, :] * stride_qd, mask=row_mask, other=0.0)
        do = tl.load(DO + q_row[:, None] * stride_dom + d[None, :] * stride_dod, mask=row_mask, other=0.0)
        lse = tl.load(LSE + q_row, mask=q_valid, other=0.0)
        delta = tl.load(DELTA + q_row, mask=q_valid, other=0.0)
        # Keys x queries orientation: P^T and dS^T come straight out of the products, so the two big operands
        # of the accumulating dots need no transpose (a transpose of an fp32 register tile spills to local memory).
        scores_t = _mm(k, tl.trans(q), USE_DOT, DOT_PRECISION) * scale_log2
        ok_t = _allowed_transposed(q_t, q_h, q_w, q_raster, q_valid, first_t, first_h, first_w,
                                   span_t, span_h, span_w, k_raster, k_valid, CAUSAL)
        p_t = tl.where(ok_t, tl.exp2(scores_t - lse[None, :]), 0.0)
        dv += _mm(p_t.to(do.dtype), do, USE_DOT, DOT_PRECISION)
        dp_t = _mm(v, tl.trans(do), USE_DOT, DOT_PRECISION)
        ds_t = p_t * (dp_t - delta[None, :])
        dk += _mm(ds_t.to(q.dtype), q, USE_DOT, DOT_PRECISION)
        visits += 1

    tl.store(DK + b * stride_dkb + h * stride_dkh + k_raster[:, None] * stride_dkn + d[None, :] * stride_dkd,
             (dk * scale).to(DK.dtype.element_ty), mask=kv_mask)
    tl.store(DV + b * stride_dvb + h * stride_dvh + k_raster[:, None] * stride_dvn + d[None, :] * stride_dvd,
             dv.to(DV.dtype.element_ty), mask=kv_mask)
    if COUNT_VISITS:
        tl.store(VISITS + batch_head * tl.num_programs(0) + tile, visits)

/* The table neurons' step in one pass per call: the compiled path of training/native.py.
 *
 * Every function works on float32 arrays of n points (C order, no broadcasting), single
 * threaded, and does in float32 the same operations, in the same order, as the PyTorch path
 * of training/neurons.py and training/memcap_net.py, so that the forward values are bit for
 * bit the same (built with -ffp-contract=off: no fused multiply-add).
 *
 * Look-up (neurons._locate, neurons._FusedBilinear):
 *   xc = min(max(x, a[0]), a[n-1])              NaN stays NaN
 *   i  = (n - 2) - #{k in 1..n-2 : a[k] - xc > 0}    the lower corner (NaN: the last cell)
 *   t  = (xc - a[i]) / (a[i+1] - a[i]),  dt/dx = (xc - x == 0) / (a[i+1] - a[i])
 *   out = g00·(1−tv)·(1−tc) + g01·(1−tv)·tc + g10·tv·(1−tc) + g11·tv·tc
 *   ∂out/∂v = ((g10 − g00)(1 − tc) + (g11 − g01)·tc)·dtv/dv, ∂out/∂c alike.
 * Surrogate (surrogate.triangle_spike): z = (x >= 0); ∂z/∂x = γ·max(0, 1 − |x|/w).
 */
#include <stddef.h>

#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define KERNEL __attribute__((target_clones("avx2", "default")))   /* picked at load time */
#else
#define KERNEL
#endif

/* Points are processed in blocks, one stage at a time over the block (locate every point,
 * then look up every point, ...): each stage is a short loop the compiler vectorizes or the
 * processor overlaps across points (a cell search, a load, a division per point). */
#define BLOCK 256

/* Blocks are independent: with OpenMP (built with -fopenmp, sharing PyTorch's runtime and so
 * its thread count, torch.set_num_threads) they are spread over the threads when there are
 * enough of them to pay for the hand-off. */
#define PARALLEL_MIN_BLOCKS 8
#define PRAGMA(x) _Pragma(#x)
/* The next loop's arrays do not overlap (distinct tensors and block buffers): without this GCC
 * gives up on loops with several outputs (too many runtime overlap checks), and without
 * -fno-trapping-math on those with a select (training/native.py CFLAGS); values unchanged. */
#if defined(__GNUC__) && !defined(__clang__)
#define NO_ALIAS PRAGMA(GCC ivdep)
#else
#define NO_ALIAS
#endif
#define FOR_BLOCKS(n, j0, m)                                                               \
    PRAGMA(omp parallel for schedule(static) if ((n) >= PARALLEL_MIN_BLOCKS * BLOCK))     \
    for (long j0 = 0; j0 < (n); j0 += BLOCK)                                              \
        for (int m = (n) - j0 < BLOCK ? (int)((n) - j0) : BLOCK, once_ = 1; once_; once_ = 0)

/* A block of located points: cell index, fraction, d(fraction)/dx (0 without slopes). */
typedef struct { int i[BLOCK]; float t[BLOCK], dt[BLOCK]; } cells_t;

INLINE void locate_block(const float *a, int n, const float *x, int m, int need_slope, cells_t *c)
{
    float xc[BLOCK], lo[BLOCK], span[BLOCK];
    int above[BLOCK];
    for (int q = 0; q < m; ++q) {       /* clamp; NaN stays NaN (as torch.maximum/minimum) */
        float y = x[q] < a[0] ? a[0] : x[q];
        y = y > a[n - 1] ? a[n - 1] : y;
        xc[q] = x[q] == x[q] ? y : x[q];
        above[q] = 0;
    }
    if (n <= 32) {                      /* short axes: count the interior points above */
        for (int k = 1; k < n - 1; ++k) {
            float ak = a[k];
            for (int q = 0; q < m; ++q) above[q] += (ak - xc[q]) > 0.0f;
        }
    } else {                            /* long axes: bisect for the first interior point above */
        for (int q = 0; q < m; ++q) {
            int l = 1, h = n - 1;       /* answer in [l, h]; h = none above */
            while (l < h) {
                int mid = (l + h) / 2;
                if ((a[mid] - xc[q]) > 0.0f) h = mid; else l = mid + 1;
            }
            above[q] = (n - 1) - l;
        }
    }
    for (int q = 0; q < m; ++q) {
        int i = (n - 2) - above[q];
        c->i[q] = i;
        lo[q] = a[i];
        span[q] = a[i + 1] - a[i];
    }
    for (int q = 0; q < m; ++q) c->t[q] = (xc[q] - lo[q]) / span[q];
    for (int q = 0; q < m; ++q)
        c->dt[q] = need_slope ? (float)((xc[q] - x[q]) == 0.0f) / span[q] : 0.0f;
}

/* One grid at a block of located points (cell index row·nc + column in idx): values into
 * out, and with dv != NULL the slopes into dv, dc. Corners are gathered first, then the
 * arithmetic runs as a plain loop over the block (both vectorized: AVX2 gathers). */
INLINE void bilinear_block(const float *g, int nc, const int *idx, const cells_t *v,
                           const cells_t *c, int m, float *out, float *dv, float *dc)
{
    float g00[BLOCK], g01[BLOCK], g10[BLOCK], g11[BLOCK];
    for (int q = 0; q < m; ++q) {
        int k = idx[q];
        g00[q] = g[k];
        g01[q] = g[k + 1];
        g10[q] = g[k + nc];
        g11[q] = g[k + nc + 1];
    }
    for (int q = 0; q < m; ++q) {
        float tv = v->t[q], tc = c->t[q], sv = 1.0f - tv, sc = 1.0f - tc;
        out[q] = g00[q] * sv * sc + g01[q] * sv * tc + g10[q] * tv * sc + g11[q] * tv * tc;
    }
    if (dv)
        for (int q = 0; q < m; ++q) {
            float tv = v->t[q], tc = c->t[q], sv = 1.0f - tv, sc = 1.0f - tc;
            dv[q] = ((g10[q] - g00[q]) * sc + (g11[q] - g01[q]) * tc) * v->dt[q];
            dc[q] = ((g01[q] - g00[q]) * sv + (g11[q] - g10[q]) * tv) * c->dt[q];
        }
}

INLINE void corner_index(const cells_t *v, const cells_t *c, int nc, int m, int *idx)
{
    for (int q = 0; q < m; ++q) idx[q] = v->i[q] * nc + c->i[q];
}

/* 1-D table at a block of located points: values, and with slope != NULL the slopes. */
INLINE void linear_block(const float *table, const cells_t *x, int m, float *out, float *slope)
{
    float y0[BLOCK], y1[BLOCK];
    for (int q = 0; q < m; ++q) {
        y0[q] = table[x->i[q]];
        y1[q] = table[x->i[q] + 1];
    }
    for (int q = 0; q < m; ++q) out[q] = y0[q] * (1.0f - x->t[q]) + y1[q] * x->t[q];
    if (slope)
        for (int q = 0; q < m; ++q) slope[q] = (y1[q] - y0[q]) * x->dt[q];
}

INLINE float surrogate(float x, float height, float half_width)
{
    float s = 1.0f - (x < 0 ? -x : x) / half_width;
    return s > 0.0f ? height * s : (s == s ? 0.0f : s);      /* NaN stays NaN, as clamp keeps it */
}

/* K grids [K, nv, nc] at n points: out [K, n]; with dv, dc != NULL the slopes [K, n]. */
KERNEL void ns_bilinear(long n, const float *v, const float *c, const float *v_axis, int nv,
                 const float *c_axis, int nc, const float *grids, int K,
                 float *out, float *dv, float *dc)
{
    int slopes = dv != NULL;
    FOR_BLOCKS(n, j0, m) {
        cells_t lv, lc;
        int idx[BLOCK];
        locate_block(v_axis, nv, v + j0, m, slopes, &lv);
        locate_block(c_axis, nc, c + j0, m, slopes, &lc);
        corner_index(&lv, &lc, nc, m, idx);
        for (int k = 0; k < K; ++k) {
            long o = (long)k * n + j0;
            bilinear_block(grids + (size_t)k * nv * nc, nc, idx, &lv, &lc, m, out + o,
                           slopes ? dv + o : NULL, slopes ? dc + o : NULL);
        }
    }
}

/* Backward of ns_bilinear: gv = Σ_k grad[k]·dv[k], gc alike (either may be NULL). */
KERNEL void ns_bilinear_backward(long n, int K, const float *grad, const float *dv, const float *dc,
                          float *gv, float *gc)
{
    for (long j = 0; j < n; ++j) {
        float sv = 0.0f, sc = 0.0f;
        for (int k = 0; k < K; ++k) {
            long o = (long)k * n + j;
            if (gv) sv += grad[o] * dv[o];
            if (gc) sc += grad[o] * dc[o];
        }
        if (gv) gv[j] = sv;
        if (gc) gc[j] = sc;
    }
}

/* The differential neuron's step (memcap_net.DiffNeuron.forward):
 *   p± = P(v±, c±), e± = E(v±, c±), m = p+ − p− − θ(p−) [− δ], z = (m >= 0),
 *   v+' = (1 − z)·e+,  v−' = z·V_ref + (1 − z)·e−.
 * offset_error (n values) may be NULL. With saved != NULL, 11 rows of n for the backward:
 * e+, e−, ∂P/∂v+, ∂P/∂c+, ∂E/∂v+, ∂E/∂c+, ∂P/∂v−, ∂P/∂c−, ∂E/∂v−, ∂E/∂c−, θ'(p−). */
KERNEL void ns_diff_step(long n, const float *vp, const float *vn, const float *cp, const float *cn,
                  const float *offset_error, const float *v_axis, int nv, const float *c_axis,
                  int nc, const float *peak, const float *end, const float *th_v, int nth,
                  const float *th_off, float v_ref, float *z, float *vp_next, float *vn_next,
                  float *margin, float *saved)
{
    int s = saved != NULL;
    FOR_BLOCKS(n, j0, m) {
        cells_t lvp, lcp, lvn, lcn, lth;
        int ip[BLOCK], in[BLOCK];
        float pp[BLOCK], pn[BLOCK], off[BLOCK], scratch[2][BLOCK];
        float *d[11];                   /* this block's rows of `saved` (e+, e− also without) */
        for (int r = 0; r < 11; ++r) d[r] = s ? saved + (long)r * n + j0 : NULL;
        if (!s) d[0] = scratch[0], d[1] = scratch[1];
        locate_block(v_axis, nv, vp + j0, m, s, &lvp);
        locate_block(c_axis, nc, cp + j0, m, s, &lcp);
        locate_block(v_axis, nv, vn + j0, m, s, &lvn);
        locate_block(c_axis, nc, cn + j0, m, s, &lcn);
        corner_index(&lvp, &lcp, nc, m, ip);
        corner_index(&lvn, &lcn, nc, m, in);
        bilinear_block(peak, nc, ip, &lvp, &lcp, m, pp, d[2], d[3]);
        bilinear_block(end, nc, ip, &lvp, &lcp, m, d[0], d[4], d[5]);
        bilinear_block(peak, nc, in, &lvn, &lcn, m, pn, d[6], d[7]);
        bilinear_block(end, nc, in, &lvn, &lcn, m, d[1], d[8], d[9]);
        locate_block(th_v, nth, pn, m, s, &lth);
        linear_block(th_off, &lth, m, off, d[10]);
        const float *restrict ep = d[0], *restrict en = d[1];
        float *restrict zb = z + j0, *restrict mb = margin + j0;
        float *restrict vpb = vp_next + j0, *restrict vnb = vn_next + j0;
        for (int q = 0; q < m; ++q) mb[q] = pp[q] - pn[q] - off[q];
        if (offset_error)
            for (int q = 0; q < m; ++q) mb[q] = mb[q] - offset_error[j0 + q];
        NO_ALIAS
        for (int q = 0; q < m; ++q) {
            float zj = (float)(mb[q] >= 0.0f);
            zb[q] = zj;
            vpb[q] = (1.0f - zj) * ep[q];
            vnb[q] = zj * v_ref + (1.0f - zj) * en[q];
        }
    }
}

/* An incoming gradient (grad_t: pointer and stride, 1 = one value per point, 0 = one value
 * for all, as PyTorch passes the gradient of a sum) as this block's values: src + j0, or
 * buf filled with the one value, or zeros when the output got no gradient (NULL). */
typedef struct { const float *p; long stride; } grad_t;
static const float zeros[BLOCK];
INLINE const float *grad_block(grad_t g, long j0, int m, float *buf)
{
    if (!g.p) return zeros;
    if (g.stride) return g.p + j0;
    for (int q = 0; q < m; ++q) buf[q] = g.p[0];
    return buf;
}

/* Backward of ns_diff_step. Incoming gradients of z, v+', v−', margin (each grad_t, NULL = 0);
 * out: gradients of v+, v−, c+, c− and of the margin (= −gradient of offset_error).
 * z is read off the margin (z = margin >= 0). */
KERNEL void ns_diff_step_backward(long n, const float *saved, const float *margin,
                                  grad_t gz, grad_t gvp_next, grad_t gvn_next, grad_t gmargin,
                                  float height, float half_width, float v_ref,
                                  float *gvp, float *gvn, float *gcp, float *gcn, float *gm_out)
{
    FOR_BLOCKS(n, j0, m) {
        float buf[4][BLOCK];
        const float *restrict d[11];
        for (int r = 0; r < 11; ++r) d[r] = saved + (long)r * n + j0;
        const float *restrict mg = margin + j0, *restrict g_z = grad_block(gz, j0, m, buf[0]);
        const float *restrict a = grad_block(gvp_next, j0, m, buf[1]);
        const float *restrict b = grad_block(gvn_next, j0, m, buf[2]);
        const float *restrict g_m = grad_block(gmargin, j0, m, buf[3]);
        float *restrict o_vp = gvp + j0, *restrict o_vn = gvn + j0, *restrict o_cp = gcp + j0;
        float *restrict o_cn = gcn + j0, *restrict o_m = gm_out + j0;
        NO_ALIAS
        for (int q = 0; q < m; ++q) {
            float gzt = g_z[q] - a[q] * d[0][q] + b[q] * (v_ref - d[1][q]);
            float gm = gzt * surrogate(mg[q], height, half_width) + g_m[q];
            float keep = mg[q] >= 0.0f ? 0.0f : 1.0f;
            float gep = a[q] * keep, gen = b[q] * keep;
            float gpn = -gm * (1.0f + d[10][q]);
            o_vp[q] = gm * d[2][q] + gep * d[4][q];
            o_cp[q] = gm * d[3][q] + gep * d[5][q];
            o_vn[q] = gpn * d[6][q] + gen * d[8][q];
            o_cn[q] = gpn * d[7][q] + gen * d[9][q];
            o_m[q] = gm;
        }
    }
}

/* The single-ended table neuron's step (neurons.TableNeuron.forward):
 *   p = P(v, c), x = p − θ, z = (x >= 0), v' = (1 − z)·E(v, c).
 * With saved != NULL, 6 rows of n: x, e, ∂P/∂v, ∂P/∂c, ∂E/∂v, ∂E/∂c. */
KERNEL void ns_table_step(long n, const float *v, const float *c, const float *v_axis, int nv,
                   const float *c_axis, int nc, const float *peak, const float *end,
                   float threshold, float *z, float *v_next, float *saved)
{
    int s = saved != NULL;
    FOR_BLOCKS(n, j0, m) {
        cells_t lv, lc;
        int idx[BLOCK];
        float p[BLOCK], scratch[2][BLOCK];
        float *d[6];                    /* this block's rows of `saved` (x, e also without) */
        for (int r = 0; r < 6; ++r) d[r] = s ? saved + (long)r * n + j0 : NULL;
        if (!s) d[0] = scratch[0], d[1] = scratch[1];
        locate_block(v_axis, nv, v + j0, m, s, &lv);
        locate_block(c_axis, nc, c + j0, m, s, &lc);
        corner_index(&lv, &lc, nc, m, idx);
        bilinear_block(peak, nc, idx, &lv, &lc, m, p, d[2], d[3]);
        bilinear_block(end, nc, idx, &lv, &lc, m, d[1], d[4], d[5]);
        float *restrict xb = d[0], *restrict zb = z + j0, *restrict vb = v_next + j0;
        const float *restrict eb = d[1];
        NO_ALIAS
        for (int q = 0; q < m; ++q) {
            float x = p[q] - threshold;
            float zj = (float)(x >= 0.0f);
            xb[q] = x;
            zb[q] = zj;
            vb[q] = (1.0f - zj) * eb[q];
        }
    }
}

/* Backward of ns_table_step: incoming gradients of z and v' (grad_t, NULL = 0) → of v and c.
 * z is read off the saved x (z = x >= 0). */
KERNEL void ns_table_step_backward(long n, const float *saved, grad_t gz, grad_t gv_next,
                                   float height, float half_width, float *gv, float *gc)
{
    FOR_BLOCKS(n, j0, m) {
        float buf[2][BLOCK];
        const float *restrict d[6];
        for (int r = 0; r < 6; ++r) d[r] = saved + (long)r * n + j0;
        const float *restrict g_z = grad_block(gz, j0, m, buf[0]);
        const float *restrict a = grad_block(gv_next, j0, m, buf[1]);
        float *restrict o_v = gv + j0, *restrict o_c = gc + j0;
        NO_ALIAS
        for (int q = 0; q < m; ++q) {
            float gx = (g_z[q] - a[q] * d[1][q]) * surrogate(d[0][q], height, half_width);
            float ge = d[0][q] >= 0.0f ? 0.0f : a[q];
            o_v[q] = gx * d[2][q] + ge * d[4][q];
            o_c[q] = gx * d[3][q] + ge * d[5][q];
        }
    }
}

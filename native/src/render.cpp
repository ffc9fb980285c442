#include "render.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include "cpu_dispatch.hpp"
#include "deform.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#define EMO3D_SSE2 1
#endif
#if EMO3D_MULTIVERSIONED
#include <immintrin.h>
#endif


namespace emo3d {

MeshRenderer::MeshRenderer(const float* verts, std::int64_t n_vertices, const std::int32_t* tris,
                           std::int64_t n_tris, const std::int64_t* offsets, const std::int32_t* indices,
                           const float* values, std::int64_t n_targets, const float* uvs,
                           const std::uint8_t* texture, int tex_w, int tex_h, const float* colors,
                           const std::uint8_t* cull, const RenderConfig& cfg)
    : cfg_(cfg), n_vertices_(n_vertices), n_tris_(n_tris), n_targets_(n_targets),
      base_(verts, verts + n_vertices * 3), tris_(tris, tris + n_tris * 3),
      deltas_(RunDeltas::from_csr(offsets, indices, values, n_targets, n_vertices)) {
    if (texture && uvs) {
        uvs_.assign(uvs, uvs + n_vertices * 2);
        const std::size_t n = static_cast<std::size_t>(tex_w) * tex_h;
        if (n > (std::size_t(1) << 24))  // the SIMD sampler computes texel indices in float
            throw std::invalid_argument("texture too large: " + std::to_string(tex_w) + "x" + std::to_string(tex_h) +
                                        " texels; at most 2^24 (e.g. 4096x4096) are supported");
        texels_.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            texels_[i] = std::uint32_t(texture[i * 3]) | (std::uint32_t(texture[i * 3 + 1]) << 8) |
                         (std::uint32_t(texture[i * 3 + 2]) << 16);
        tex_w_ = tex_w;
        tex_h_ = tex_h;
    } else if (colors) {
        colors_.assign(colors, colors + n_vertices * 3);
    }
    if (cull && std::any_of(cull, cull + n_tris, [](std::uint8_t c) { return c != 0; }))
        cull_.assign(cull, cull + n_tris);
    set_wide_kernels(true);
    n_threads_ = resolve_threads(cfg.threads);
    pool_ = std::make_unique<ThreadPool>(n_threads_);
    ensure_workspaces(1);
}

bool MeshRenderer::set_wide_kernels(bool on, bool avx512) {
    std::lock_guard<std::mutex> lock(mutex_);
#if EMO3D_MULTIVERSIONED
    wide_kernels_ = on && cpu_is_v3();
    avx512_kernels_ = wide_kernels_ && avx512 && cpu_is_v4();
#else
    (void)on;
    (void)avx512;
    wide_kernels_ = avx512_kernels_ = false;
#endif
    return wide_kernels_;
}

void MeshRenderer::ensure_workspaces(int n) {
    const std::size_t S = static_cast<std::size_t>(cfg_.width) * cfg_.ssaa * cfg_.height * cfg_.ssaa;
    while (static_cast<int>(ws_.size()) < n) {
        Workspace w;
        w.verts.resize(n_vertices_ * 3);
        w.normals.resize(n_vertices_ * 3);
        w.sx.resize(n_vertices_);
        w.sy.resize(n_vertices_);
        w.z.resize(n_vertices_);
        w.rz.resize(n_vertices_);
        w.iz.resize(S);
        w.tri.resize(S);
        w.planes.resize(std::size_t(n_tris_) * kPlanes * 3);
        w.fplanes.resize(std::size_t(n_tris_) * kF);
        w.rast.resize(std::size_t(n_tris_));
        ws_.push_back(std::move(w));
    }
}

void MeshRenderer::prepare(Workspace& ws, const float* v, const float* rot, int threads) const {
    accumulate_normals(ws, v);
    // per vertex (independent): normalise, rotate, project; split over threads for one frame
    pool_->for_chunks(n_vertices_, n_vertices_ >= 8192 ? threads : 1,
                      [&](std::int64_t i0, std::int64_t i1) { project_vertices(ws, v, rot, i0, i1); });
}

EMO3D_HOT void MeshRenderer::accumulate_normals(Workspace& ws, const float* v) const {
    double* n = ws.normals.data();
    std::fill(ws.normals.begin(), ws.normals.end(), 0.0);
    for (std::int64_t f = 0; f < n_tris_; ++f) {
        const std::int32_t a = tris_[f * 3], b = tris_[f * 3 + 1], c = tris_[f * 3 + 2];
        const double e1[3] = {double(v[b * 3]) - v[a * 3], double(v[b * 3 + 1]) - v[a * 3 + 1],
                              double(v[b * 3 + 2]) - v[a * 3 + 2]};
        const double e2[3] = {double(v[c * 3]) - v[a * 3], double(v[c * 3 + 1]) - v[a * 3 + 1],
                              double(v[c * 3 + 2]) - v[a * 3 + 2]};
        const double fn[3] = {e1[1] * e2[2] - e1[2] * e2[1], e1[2] * e2[0] - e1[0] * e2[2],
                              e1[0] * e2[1] - e1[1] * e2[0]};
        for (int k = 0; k < 3; ++k) {
            const std::int32_t i = tris_[f * 3 + k];
            n[i * 3] += fn[0];
            n[i * 3 + 1] += fn[1];
            n[i * 3 + 2] += fn[2];
        }
    }
}

EMO3D_HOT void MeshRenderer::project_vertices(Workspace& ws, const float* v, const float* rot, std::int64_t i_begin,
                                              std::int64_t i_end) const {
    double* n = ws.normals.data();
    double R[9];
    for (int i = 0; i < 9; ++i) R[i] = rot[i];
    const double W = double(cfg_.width) * cfg_.ssaa, H = double(cfg_.height) * cfg_.ssaa;
    const double aspect = double(cfg_.width) / double(cfg_.height);
    for (std::int64_t i = i_begin; i < i_end; ++i) {
        double* ni = n + i * 3;
        const double len = std::sqrt(ni[0] * ni[0] + ni[1] * ni[1] + ni[2] * ni[2]);
        double u[3] = {0, 0, 0};
        if (len > 0) {
            u[0] = ni[0] / len;
            u[1] = ni[1] / len;
            u[2] = ni[2] / len;
        }
        for (int r = 0; r < 3; ++r) ni[r] = R[r * 3] * u[0] + R[r * 3 + 1] * u[1] + R[r * 3 + 2] * u[2];
        const double d[3] = {double(v[i * 3]) - cfg_.center[0], double(v[i * 3 + 1]) - cfg_.center[1],
                             double(v[i * 3 + 2]) - cfg_.center[2]};
        const double p0 = R[0] * d[0] + R[1] * d[1] + R[2] * d[2];
        const double p1 = R[3] * d[0] + R[4] * d[1] + R[5] * d[2];
        const double p2 = R[6] * d[0] + R[7] * d[1] + R[8] * d[2];
        const double z = cfg_.dist - p2;
        ws.z[i] = z;
        ws.rz[i] = z > 1e-6 ? 1.0 / z : 0.0;
        const double zs = z > 1e-6 ? z : 1.0;
        ws.sx[i] = (p0 / (zs * cfg_.tan_half * aspect) + 1.0) * 0.5 * W;
        ws.sy[i] = (1.0 - p1 / (zs * cfg_.tan_half)) * 0.5 * H;
    }
}

namespace {
inline double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }
}  // namespace

namespace {
// l_i(x, y) = E_i(x, y) / area (E_0 = (c-b) x (q-b) etc.) into P[0..8], then the 1/z plane into P[9..11]
inline void barycentric_planes(double* P, double ax, double ay, double bx, double by, double cx, double cy,
                               double area, const double* w) {
    const double ex[3][4] = {{bx, by, cx, cy}, {cx, cy, ax, ay}, {ax, ay, bx, by}};
    const double inv = 1.0 / area;
    for (int i = 0; i < 3; ++i) {
        const double px = ex[i][0], py = ex[i][1], qx = ex[i][2], qy = ex[i][3];
        // (qx - px) * (y - py) - (qy - py) * (x - px)
        P[i * 3 + 0] = -(qy - py) * inv;
        P[i * 3 + 1] = (qx - px) * inv;
        P[i * 3 + 2] = (-(qx - px) * py + (qy - py) * px) * inv;
    }
    for (int j = 0; j < 3; ++j) P[9 + j] = w[0] * P[j] + w[1] * P[3 + j] + w[2] * P[6 + j];
}
}  // namespace

// The shading planes of triangle t (normal, then uv or colour, each times 1/z) from its barycentric and
// 1/z planes P[0..11] (w: its vertices' 1/z): fplanes for the SIMD shaders, planes 4..9 for the scalar one.
__attribute__((always_inline)) inline void MeshRenderer::setup_shading(Workspace& ws, std::int64_t t,
                                                                       const std::int32_t* v, double area,
                                                                       const double* w, double* P) const {
    const bool tex = !texels_.empty(), col = !colors_.empty();
    auto plane = [&](int slot, double a0, double a1, double a2) __attribute__((always_inline)) {
        const double k0 = a0 * w[0], k1 = a1 * w[1], k2 = a2 * w[2];
        for (int j = 0; j < 3; ++j) P[slot * 3 + j] = k0 * P[j] + k1 * P[3 + j] + k2 * P[6 + j];
    };
    const double flip = area > 0 ? -1.0 : 1.0;  // y-down screen: front faces have area < 0
    const double* n = ws.normals.data();
    for (int k = 0; k < 3; ++k) plane(4 + k, flip * n[v[0] * 3 + k], flip * n[v[1] * 3 + k], flip * n[v[2] * 3 + k]);
    if (tex) {
        plane(7, uvs_[v[0] * 2], uvs_[v[1] * 2], uvs_[v[2] * 2]);
        plane(8, uvs_[v[0] * 2 + 1], uvs_[v[1] * 2 + 1], uvs_[v[2] * 2 + 1]);
        std::fill(P + 27, P + 30, 0.0);
    } else if (col) {
        for (int k = 0; k < 3; ++k) plane(7 + k, colors_[v[0] * 3 + k], colors_[v[1] * 3 + k], colors_[v[2] * 3 + k]);
    } else {
        std::fill(P + 21, P + 30, 0.0);
    }
    if (scalar_shading()) {
        std::copy(P + 12, P + kPlanes * 3, &ws.planes[t * kPlanes * 3 + 12]);
        return;
    }
    const TriRaster& box = ws.rast[t];
    float* Fp = &ws.fplanes[t * kF];
    const double ox = box.x0 + 0.5, oy = box.y0 + 0.5;
    Fp[0] = float(ox);
    Fp[1] = float(oy);
    for (int k = 0; k < 7; ++k) {
        const double* q = P + (3 + k) * 3;
        Fp[2 + k * 3] = float(q[0]);
        Fp[3 + k * 3] = float(q[1]);
        Fp[4 + k * 3] = float(q[0] * ox + q[1] * oy + q[2]);
    }
}

// Set-up of every triangle: culling, the sample box, the 1/z plane and, for a triangle with a sample
// in its box, its shading planes (setup_shading).
EMO3D_HOT void MeshRenderer::setup_triangles(Workspace& ws, std::int64_t t_begin, std::int64_t t_end) const {
    const int Ws = cfg_.width * cfg_.ssaa, Hs = cfg_.height * cfg_.ssaa;
    const double* sx = ws.sx.data();
    const double* sy = ws.sy.data();
    const double* z = ws.z.data();
    const std::uint8_t* cull = cull_.empty() ? nullptr : cull_.data();
    const bool scalar_shading = this->scalar_shading();
    for (std::int64_t t = t_begin; t < t_end; ++t) {
        TriRaster& box = ws.rast[t];
        box.x0 = 0; box.x1 = -1; box.y0 = 0; box.y1 = -1;
        const std::int32_t v[3] = {tris_[t * 3], tris_[t * 3 + 1], tris_[t * 3 + 2]};
        if (!(z[v[0]] > 1e-6 && z[v[1]] > 1e-6 && z[v[2]] > 1e-6)) continue;
        const double ax = sx[v[0]], ay = sy[v[0]], bx = sx[v[1]], by = sy[v[1]], cx = sx[v[2]], cy = sy[v[2]];
        const double area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax);
        if (area == 0.0) continue;
        if (area > 0 && cull && cull[t]) continue;  // y-down screen: a back face (area > 0) of a single-sided triangle
        const double fx0 = std::ceil(std::min(std::min(ax, bx), cx) - 0.5);
        const double fx1 = std::floor(std::max(std::max(ax, bx), cx) - 0.5);
        const double fy0 = std::ceil(std::min(std::min(ay, by), cy) - 0.5);
        const double fy1 = std::floor(std::max(std::max(ay, by), cy) - 0.5);
        const int bx0 = int(clampd(fx0, 0, Ws)), bx1 = int(clampd(fx1, -1, Ws - 1));
        const int by0 = int(clampd(fy0, 0, Hs)), by1 = int(clampd(fy1, -1, Hs - 1));
        if (bx1 < bx0 || by1 < by0) continue;  // no sample centre in the box (most sub-sample triangles)
        box.x0 = bx0; box.x1 = bx1; box.y0 = by0; box.y1 = by1;
        const double w[3] = {ws.rz[v[0]], ws.rz[v[1]], ws.rz[v[2]]};
        double P[kPlanes * 3];
        barycentric_planes(P, ax, ay, bx, by, cx, cy, area, w);
        for (int j = 0; j < 3; ++j) box.iz[j] = P[9 + j];
        if (scalar_shading || bx1 - bx0 >= kNarrow)  // raster_rows' span solver, the scalar shader's 1/z
            std::copy(P, P + 12, &ws.planes[t * kPlanes * 3]);
        setup_shading(ws, t, v, area, w, P);
    }
}

void MeshRenderer::bin_triangles(Workspace& ws, int n_bands) const {
    // counting sort by band (those each triangle's box meets), stable: each band lists its
    // triangles in ascending order, so the z-buffer sees the same triangles in the same order as a
    // pass over all of them
    ws.bin_start.assign(std::size_t(n_bands) + 1, 0);
    std::int64_t* cnt = ws.bin_start.data() + 1;
    const int bs = kBandRows * cfg_.ssaa;  // sample rows per band
    const TriRaster* rast = ws.rast.data();
    // bands [first, last] the triangle's box meets (none: last < first)
    auto bands = [&](std::int64_t t, int& k0, int& k1) {
        const TriRaster& r = rast[t];
        const bool on = r.x1 >= r.x0 && r.y1 >= r.y0;
        k0 = on ? r.y0 / bs : 0;
        k1 = on ? r.y1 / bs : -1;
    };
    for (std::int64_t t = 0; t < n_tris_; ++t) {
        int k, k1;
        bands(t, k, k1);
        for (; k <= k1; ++k) ++cnt[k];
    }
    for (int k = 0; k < n_bands; ++k) ws.bin_start[k + 1] += ws.bin_start[k];
    // at least one slot, so a band's list pointer is never null (null means "all triangles")
    const std::size_t total = std::max<std::size_t>(std::size_t(ws.bin_start[n_bands]), 1);
    if (ws.bin_tris.size() < total) ws.bin_tris.resize(total);
    ws.bin_fill.assign(ws.bin_start.begin(), ws.bin_start.end() - 1);
    std::int64_t* fill = ws.bin_fill.data();
    std::int32_t* out = ws.bin_tris.data();
    for (std::int64_t t = 0; t < n_tris_; ++t) {
        int k, k1;
        bands(t, k, k1);
        for (; k <= k1; ++k) out[fill[k]++] = static_cast<std::int32_t>(t);
    }
}

namespace {
// Calls rows(tie0, tie1, tie2) with a triangle's three tie-edge flags (>= on a tie edge, > on the others) as
// compile-time constants (std::true_type / std::false_type): one row loop per combination, one compare per edge.
// A kernel of a wider instruction set passes a lambda carrying its target attribute (not always_inline: this
// dispatcher has none); a call per triangle
template <class Rows>
__attribute__((always_inline)) inline void with_tie_edges(const bool* tie, Rows&& rows) {
    using T = std::true_type;
    using F = std::false_type;
    switch (int(tie[0]) | int(tie[1]) << 1 | int(tie[2]) << 2) {
        case 0: rows(F{}, F{}, F{}); break;
        case 1: rows(T{}, F{}, F{}); break;
        case 2: rows(F{}, T{}, F{}); break;
        case 3: rows(T{}, T{}, F{}); break;
        case 4: rows(F{}, F{}, T{}); break;
        case 5: rows(T{}, F{}, T{}); break;
        case 6: rows(F{}, T{}, T{}); break;
        default: rows(T{}, T{}, T{}); break;
    }
}
}  // namespace

#ifdef EMO3D_SSE2
namespace {
// kLaneMask[m]: all ones in the lanes whose bit is set in m (4 bits)
alignas(16) constexpr std::int32_t kLaneMask[16][4] = {
    {0, 0, 0, 0}, {-1, 0, 0, 0}, {0, -1, 0, 0}, {-1, -1, 0, 0}, {0, 0, -1, 0}, {-1, 0, -1, 0}, {0, -1, -1, 0},
    {-1, -1, -1, 0}, {0, 0, 0, -1}, {-1, 0, 0, -1}, {0, -1, 0, -1}, {-1, -1, 0, -1}, {0, 0, -1, -1},
    {-1, 0, -1, -1}, {0, -1, -1, -1}, {-1, -1, -1, -1}};
}  // namespace
#endif

#if EMO3D_MULTIVERSIONED
namespace {
// raster_narrow's coverage test on an x86-64-v3 CPU: four sample columns per compare instead of
// two (the same double products and comparisons, so the same bits), rows y0..y1; depth(py, bits)
template <bool T0, bool T1, bool T2, class Depth>
EMO3D_V3 __attribute__((always_inline)) inline void narrow_rows_v3(const __m256d (*C)[MeshRenderer::kNarrow / 4],
                                                                   int quads, unsigned cols, const double* sdx,
                                                                   const double* ey0, int y0, int y1, Depth& depth) {
    for (int py = y0; py <= y1; ++py) {
        const double qy = py + 0.5;
        const __m256d R0 = _mm256_set1_pd(sdx[0] * (qy - ey0[0])), R1 = _mm256_set1_pd(sdx[1] * (qy - ey0[1])),
                      R2 = _mm256_set1_pd(sdx[2] * (qy - ey0[2]));
        unsigned bits = 0;
        for (int g = 0; g < quads; ++g) {
            const __m256d m0 = _mm256_cmp_pd(R0, C[0][g], T0 ? _CMP_GE_OQ : _CMP_GT_OQ);
            const __m256d m1 = _mm256_cmp_pd(R1, C[1][g], T1 ? _CMP_GE_OQ : _CMP_GT_OQ);
            const __m256d m2 = _mm256_cmp_pd(R2, C[2][g], T2 ? _CMP_GE_OQ : _CMP_GT_OQ);
            bits |= unsigned(_mm256_movemask_pd(_mm256_and_pd(_mm256_and_pd(m0, m1), m2))) << (4 * g);
        }
        bits &= cols;
        if (bits) depth(py, bits);
    }
}

template <class Depth>
EMO3D_V3 __attribute__((noinline)) void narrow_cover_v3(const double* sdx, const double* sdy, const double* ex0,
                                                        const double* ey0, const bool* tie, double qx0, int n, int y0,
                                                        int y1, Depth& depth) {
    const int quads = (n + 3) >> 2;
    __m256d C[3][MeshRenderer::kNarrow / 4];  // s dy (x - px) at the quads of sample columns
    for (int i = 0; i < 3; ++i) {
        const __m256d d = _mm256_set1_pd(sdy[i]), p = _mm256_set1_pd(ex0[i]);
        for (int g = 0; g < quads; ++g)  // x0 + k + 0.5 is exact in double either way
            C[i][g] = _mm256_mul_pd(
                d, _mm256_sub_pd(_mm256_setr_pd(qx0 + 4 * g, qx0 + 4 * g + 1, qx0 + 4 * g + 2, qx0 + 4 * g + 3), p));
    }
    const unsigned cols = n >= 32 ? ~0u : (1u << n) - 1;
    with_tie_edges(tie, [&](auto t0, auto t1, auto t2) EMO3D_V3 {
        narrow_rows_v3<decltype(t0)::value, decltype(t1)::value, decltype(t2)::value>(C, quads, cols, sdx, ey0, y0,
                                                                                         y1, depth);
    });
}
}  // namespace
#endif

#if EMO3D_MULTIVERSIONED
namespace {
// What the 512-bit narrow kernel writes: the triangle's 1/z plane and id, the sample buffers' first
// row and column of its box, the buffers' row length
struct NarrowTarget {
    const double* Z;
    double qx0;
    std::int32_t tid;
    float* iz;
    std::int32_t* tri;
    int row_len, row0;
};

// raster_narrow on an x86-64-v4 CPU: eight sample columns per compare (the same double products and
// comparisons as the other kernels, so the same bits), chained through the compare mask, then the row's
// depth test in one 16-lane masked load and store (masked-off lanes are neither read nor written)
template <bool T0, bool T1, bool T2>
EMO3D_V4 __attribute__((always_inline)) inline void narrow_rows_v4(const __m512d (*C)[2], int octs, unsigned cols,
                                                                   const double* sdx, const double* ey0, int y0,
                                                                   int y1, const NarrowTarget& d) {
    const __m512 lane = _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f, 14.f, 15.f);
    const __m512 dz = _mm512_set1_ps(float(d.Z[0]));
    const __m512i tv = _mm512_set1_epi32(d.tid);
    for (int py = y0; py <= y1; ++py) {
        const double qy = py + 0.5;
        const __m512d R0 = _mm512_set1_pd(sdx[0] * (qy - ey0[0])), R1 = _mm512_set1_pd(sdx[1] * (qy - ey0[1])),
                      R2 = _mm512_set1_pd(sdx[2] * (qy - ey0[2]));
        unsigned bits = 0;
        for (int g = 0; g < octs; ++g) {
            __mmask8 m = _mm512_cmp_pd_mask(R0, C[0][g], T0 ? _CMP_GE_OQ : _CMP_GT_OQ);
            m = _mm512_mask_cmp_pd_mask(m, R1, C[1][g], T1 ? _CMP_GE_OQ : _CMP_GT_OQ);
            m = _mm512_mask_cmp_pd_mask(m, R2, C[2][g], T2 ? _CMP_GE_OQ : _CMP_GT_OQ);
            bits |= unsigned(m) << (8 * g);
        }
        bits &= cols;
        if (!bits) continue;
        const float izf0 = float(d.Z[0] * d.qx0 + d.Z[1] * (py + 0.5) + d.Z[2]);
        const std::size_t row = std::size_t(py - d.row0) * d.row_len;
        const __m512 iz = _mm512_fmadd_ps(dz, lane, _mm512_set1_ps(izf0));
        const __m512 old = _mm512_maskz_loadu_ps(__mmask16(bits), d.iz + row);
        const __mmask16 closer = _mm512_mask_cmp_ps_mask(__mmask16(bits), iz, old, _CMP_GT_OQ);
        _mm512_mask_storeu_ps(d.iz + row, closer, iz);
        _mm512_mask_storeu_epi32(d.tri + row, closer, tv);
    }
}

EMO3D_V4 __attribute__((noinline)) void narrow_cover_v4(const double* sdx, const double* sdy, const double* ex0,
                                                        const double* ey0, const bool* tie, int n, int y0, int y1,
                                                        const NarrowTarget& d) {
    const int octs = (n + 7) >> 3;
    __m512d C[3][2];  // s dy (x - px) at the eights of sample columns
    const __m512d cols8 = _mm512_setr_pd(0., 1., 2., 3., 4., 5., 6., 7.);
    for (int i = 0; i < 3; ++i) {
        const __m512d dy = _mm512_set1_pd(sdy[i]), p = _mm512_set1_pd(ex0[i]);
        for (int g = 0; g < octs; ++g)  // x0 + k + 0.5 is exact in double either way
            C[i][g] = _mm512_mul_pd(dy, _mm512_sub_pd(_mm512_add_pd(_mm512_set1_pd(d.qx0 + 8 * g), cols8), p));
    }
    const unsigned cols = (1u << n) - 1;  // n <= kNarrow = 16
    with_tie_edges(tie, [&](auto t0, auto t1, auto t2) EMO3D_V4 {
        narrow_rows_v4<decltype(t0)::value, decltype(t1)::value, decltype(t2)::value>(C, octs, cols, sdx, ey0, y0,
                                                                                         y1, d);
    });
}
}  // namespace
#endif

// One triangle whose box is at most kNarrow samples wide (rows y0..y1): every sample of the box
// gets the watertight edge test of the module docstring (as raster_rows' edge_span), two samples
// at a time. inside_i = s_i E_i > 0, or = 0 on a tie edge, with E_i = dx (y - py) - dy (x - px) from
// the canonical endpoints and s_i = +-1 the triangle's side: s dx (y - py) is compared with
// s dy (x - px) (negation is exact, so each product is bitwise the reference's up to sign).
EMO3D_HOT void MeshRenderer::raster_narrow(Workspace& ws, std::int64_t t, int x0, int x1, int y0, int y1) const {
    const int Ws = cfg_.width * cfg_.ssaa;
    const int n = x1 - x0 + 1;  // 1..kNarrow samples per row
    const std::int32_t* tv = &tris_[t * 3];
    const double* sx = ws.sx.data();
    const double* sy = ws.sy.data();
    const double ax = sx[tv[0]], ay = sy[tv[0]];
    const bool area_pos = (sx[tv[1]] - ax) * (sy[tv[2]] - ay) - (sy[tv[1]] - ay) * (sx[tv[2]] - ax) > 0;
    double sdx[3], sdy[3], ex0[3], ey0[3];
    bool tie[3];
    for (int i = 0; i < 3; ++i) {  // edge i joins vertices i+1 -> i+2
        double px = sx[tv[(i + 1) % 3]], py = sy[tv[(i + 1) % 3]];
        double qx = sx[tv[(i + 2) % 3]], qy = sy[tv[(i + 2) % 3]];
        const bool swap = qx < px || (qx == px && qy < py);
        if (swap) {
            std::swap(px, qx);
            std::swap(py, qy);
        }
        const double dx = qx - px, dy = qy - py;
        const double s = area_pos != swap ? 1.0 : -1.0;
        tie[i] = -s * dy > 0 || (dy == 0 && s * dx > 0);
        sdx[i] = s * dx;
        sdy[i] = s * dy;
        ex0[i] = px;
        ey0[i] = py;
    }
    const double* Z = ws.rast[t].iz;  // the 1/z plane
    const double qx0 = x0 + 0.5;
    const float dzf = float(Z[0]);
    const std::int32_t tid = static_cast<std::int32_t>(t);
    float* const iz_base = ws.iz.data() + x0;
    std::int32_t* const tri_base = ws.tri.data() + x0;
    // covered samples of a row as bits, then the depth test on each (without a branch: nearer or
    // not is a coin toss where surfaces overlap); max keeps the old value on a tie (earlier wins)
    auto depth = [&](int py, unsigned bits) __attribute__((always_inline)) {
        const float izf0 = float(Z[0] * qx0 + Z[1] * (py + 0.5) + Z[2]);
        float* const izrow = iz_base + std::size_t(py - ws.row0) * Ws;
        std::int32_t* const trow = tri_base + std::size_t(py - ws.row0) * Ws;
        auto one = [&](int k) __attribute__((always_inline)) {
            const float iz = izf0 + dzf * float(k), old = izrow[k];
            const std::int32_t keep = -std::int32_t(!(iz > old));
            izrow[k] = iz > old ? iz : old;
            trow[k] = (trow[k] & keep) | (tid & ~keep);
        };
#ifdef EMO3D_SSE2
        // four samples at a time: the covered lanes that are nearer take the new depth and id; the
        // other lanes are written back unchanged (they lie in the same row, which only this thread
        // draws), except at the row's end, where the lanes are done one by one
        const __m128 z0 = _mm_set1_ps(izf0), dz = _mm_set1_ps(dzf);
        const __m128i tv = _mm_set1_epi32(tid);
        for (int k = 0; bits; k += 4, bits >>= 4) {
            unsigned m = bits & 15u;
            if (!m) continue;
            if (x0 + k + 4 > Ws) {
                for (; m; m &= m - 1) one(k + __builtin_ctz(m));
                continue;
            }
            const __m128 cov = _mm_castsi128_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(kLaneMask[m])));
            const __m128 iz = _mm_add_ps(z0, _mm_mul_ps(dz, _mm_add_ps(_mm_set1_ps(float(k)), _mm_setr_ps(0.f, 1.f, 2.f, 3.f))));
            const __m128 old = _mm_loadu_ps(izrow + k);
            const __m128 closer = _mm_and_ps(_mm_cmpgt_ps(iz, old), cov);
            _mm_storeu_ps(izrow + k, _mm_or_ps(_mm_and_ps(closer, iz), _mm_andnot_ps(closer, old)));
            const __m128i c = _mm_castps_si128(closer);
            __m128i* tp = reinterpret_cast<__m128i*>(trow + k);
            _mm_storeu_si128(tp, _mm_or_si128(_mm_and_si128(c, tv), _mm_andnot_si128(c, _mm_loadu_si128(tp))));
        }
#else
        for (; bits; bits &= bits - 1) one(__builtin_ctz(bits));
#endif
    };
#if EMO3D_MULTIVERSIONED
    if (avx512_kernels_) {
        const NarrowTarget d{Z, qx0, tid, iz_base, tri_base, Ws, ws.row0};
        narrow_cover_v4(sdx, sdy, ex0, ey0, tie, n, y0, y1, d);
        return;
    }
    if (wide_kernels_) {
        narrow_cover_v3(sdx, sdy, ex0, ey0, tie, qx0, n, y0, y1, depth);
        return;
    }
#endif
#ifdef EMO3D_SSE2
    constexpr int kPairs = kNarrow / 2;
    const int pairs = (n + 1) >> 1;
    __m128d C[3][kPairs];  // s dy (x - px) at the pairs of sample columns
    for (int i = 0; i < 3; ++i) {
        const __m128d d = _mm_set1_pd(sdy[i]), p = _mm_set1_pd(ex0[i]);
        for (int g = 0; g < pairs; ++g)  // x0 + k + 0.5 is exact in double either way
            C[i][g] = _mm_mul_pd(d, _mm_sub_pd(_mm_setr_pd(qx0 + 2 * g, qx0 + 2 * g + 1), p));
    }
    const unsigned cols = n >= 32 ? ~0u : (1u << n) - 1;  // bits of the box's columns
    // one loop per combination of tie edges (>= on a tie edge, > on the others): one compare per edge
    auto rows = [&](auto tie0, auto tie1, auto tie2) __attribute__((always_inline)) {
        for (int py = y0; py <= y1; ++py) {
            const double qy = py + 0.5;
            const __m128d R0 = _mm_set1_pd(sdx[0] * (qy - ey0[0])), R1 = _mm_set1_pd(sdx[1] * (qy - ey0[1])),
                          R2 = _mm_set1_pd(sdx[2] * (qy - ey0[2]));
            unsigned bits = 0;
            for (int g = 0; g < pairs; ++g) {
                const __m128d m0 = decltype(tie0)::value ? _mm_cmpge_pd(R0, C[0][g]) : _mm_cmpgt_pd(R0, C[0][g]);
                const __m128d m1 = decltype(tie1)::value ? _mm_cmpge_pd(R1, C[1][g]) : _mm_cmpgt_pd(R1, C[1][g]);
                const __m128d m2 = decltype(tie2)::value ? _mm_cmpge_pd(R2, C[2][g]) : _mm_cmpgt_pd(R2, C[2][g]);
                bits |= unsigned(_mm_movemask_pd(_mm_and_pd(_mm_and_pd(m0, m1), m2))) << (2 * g);
            }
            bits &= cols;
            if (bits) depth(py, bits);
        }
    };
    with_tie_edges(tie, rows);
#else
    for (int py = y0; py <= y1; ++py) {
        const double qy = py + 0.5;
        const double R[3] = {sdx[0] * (qy - ey0[0]), sdx[1] * (qy - ey0[1]), sdx[2] * (qy - ey0[2])};
        unsigned bits = 0;
        for (int k = 0; k < n; ++k) {
            bool in = true;
            for (int i = 0; i < 3; ++i) {
                const double c = sdy[i] * ((qx0 + k) - ex0[i]);
                in = in && (R[i] > c || (R[i] == c && tie[i]));
            }
            bits |= unsigned(in) << k;
        }
        if (bits) depth(py, bits);
    }
#endif
}

namespace {
// eight floats / ints as GCC vector types: 256-bit registers in the x86-64-v3 clone of a function,
// two 128-bit ones in the baseline clone
typedef float F8 __attribute__((vector_size(32)));
typedef std::int32_t I8 __attribute__((vector_size(32)));
constexpr F8 kLane8 = {0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f};
}  // namespace

EMO3D_HOT void MeshRenderer::raster_rows(Workspace& ws, int y_begin, int y_end, const std::int32_t* list,
                                         std::int64_t n_list) const {
    const int Ws = cfg_.width * cfg_.ssaa;
    // iz = 1/z > 0 on every surface sample, so 0 marks "no surface yet" (and the background when
    // shading); tri is only meaningful where iz > 0, but the depth test reads it (branch-free), so it
    // is cleared too: the band's rows come into cache by writes, not by misses on last frame's data
    const std::size_t s0 = std::size_t(y_begin - ws.row0) * Ws, s1 = std::size_t(y_end - ws.row0) * Ws;
    std::fill(ws.iz.begin() + s0, ws.iz.begin() + s1, 0.0f);
    std::fill(ws.tri.begin() + s0, ws.tri.begin() + s1, 0);
    const std::int64_t n_draw = list ? n_list : n_tris_;
    for (std::int64_t j = 0; j < n_draw; ++j) {
        const std::int64_t t = list ? list[j] : j;
        const TriRaster& box = ws.rast[t];
        const int x0 = box.x0, x1 = box.x1, y0 = std::max(box.y0, y_begin), y1 = std::min(box.y1, y_end - 1);
        if (x1 < x0 || y1 < y0) continue;
        if (x1 - x0 < kNarrow) {  // most triangles of a dense rig: the exact test on every sample of the box
            raster_narrow(ws, t, x0, x1, y0, y1);
            continue;
        }
        const double* P = &ws.planes[t * kPlanes * 3];
        const double qx0 = x0 + 0.5;
        const std::int32_t tid = static_cast<std::int32_t>(t);
        // Watertight edge test (samples near a span end). Each edge is evaluated from its endpoints in
        // a canonical order (the lexicographically smaller screen point first), so the two triangles
        // sharing an edge compute bitwise the same products and take opposite sides of it; a sample
        // exactly on the edge goes to the triangle whose inward normal points to +x (or, for a
        // horizontal edge, to +y): the top-left rule, i.e. the sample is nudged by (eps, eps^2).
        // Set up on first use only: a sample lands within kEps of a span end (below) on few rows.
        double ex0[3], ey0[3], edx[3], edy[3];
        bool pos[3], tie[3], edges_ready = false;
        auto setup_edges = [&]() __attribute__((noinline, cold)) {
            const std::int32_t* tv = &tris_[t * 3];
            const double ax = ws.sx[tv[0]], ay = ws.sy[tv[0]];
            const bool area_pos =
                (ws.sx[tv[1]] - ax) * (ws.sy[tv[2]] - ay) - (ws.sy[tv[1]] - ay) * (ws.sx[tv[2]] - ax) > 0;
            for (int i = 0; i < 3; ++i) {  // edge i joins vertices i+1 -> i+2 (its third vertex is i)
                double px = ws.sx[tv[(i + 1) % 3]], py = ws.sy[tv[(i + 1) % 3]];
                double qx = ws.sx[tv[(i + 2) % 3]], qy = ws.sy[tv[(i + 2) % 3]];
                const bool swap = qx < px || (qx == px && qy < py);
                if (swap) {
                    std::swap(px, qx);
                    std::swap(py, qy);
                }
                ex0[i] = px;
                ey0[i] = py;
                edx[i] = qx - px;
                edy[i] = qy - py;
                // inside: sign(E) == sign(area) for the edge in triangle order, E = dx (y - py) - dy (x - px)
                pos[i] = area_pos != swap;
                const double sg = pos[i] ? 1.0 : -1.0;
                tie[i] = -sg * edy[i] > 0 || (edy[i] == 0 && sg * edx[i] > 0);
            }
            edges_ready = true;
        };
        // reciprocals of the barycentrics' x slopes, once per triangle (0 where a slope is 0)
        const double as[3] = {P[0], P[3], P[6]};
        const double inv_as[3] = {as[0] != 0 ? 1.0 / as[0] : 0.0, as[1] != 0 ? 1.0 / as[1] : 0.0,
                                  as[2] != 0 ? 1.0 / as[2] : 0.0};
        for (int py = y0; py <= y1; ++py) {
            const double qy = py + 0.5;
            const double l0 = P[0] * qx0 + P[1] * qy + P[2];
            const double l1 = P[3] * qx0 + P[4] * qy + P[5];
            const double l2 = P[6] * qx0 + P[7] * qy + P[8];
            const double iz0 = P[9] * qx0 + P[10] * qy + P[11];
            // The span [lo, hi] where all three barycentrics are >= 0, solved per row. A sample more
            // than kEps from both ends is inside every edge without a test (the solve's rounding is
            // ~1e-12 samples); only a sample within kEps of an end, if any, gets the watertight edge
            // test above (the reference's rule), and every sample does on a row that runs along a
            // horizontal edge. lo, hi start beyond the box, so the box's own ends are not span ends.
            constexpr double kEps = 1e-7;
            const double ls[3] = {l0, l1, l2};
            double lo = -1, hi = x1 - x0 + 1;
            bool along = false;
            for (int i = 0; i < 3; ++i) {
                if (as[i] > 0) lo = std::max(lo, -ls[i] * inv_as[i]);
                else if (as[i] < 0) hi = std::min(hi, -ls[i] * inv_as[i]);
                else if (std::abs(ls[i]) <= kEps * std::abs(P[i * 3 + 1])) along = true;  // within kEps rows
                else if (ls[i] < 0) hi = -4;  // the row misses the triangle
            }
            if (hi < lo - 2) continue;
            const int k0 = std::max(0, int(std::ceil(lo - kEps)));
            const int k1 = std::min(x1 - x0, int(std::floor(std::max(hi + kEps, -1.0))));
            const int ki0 = along ? k1 + 1 : std::max(k0, int(std::ceil(lo + kEps)));
            const int ki1 = std::min(k1, int(std::floor(std::max(hi - kEps, -1.0))));
            float* izrow = ws.iz.data() + std::size_t(py - ws.row0) * Ws + x0;
            std::int32_t* trow = ws.tri.data() + std::size_t(py - ws.row0) * Ws + x0;
            const float izf0 = float(iz0), dzf = float(P[9]);
            // samples near the edges: the watertight coverage test (double precision), then depth
            auto edge_span = [&](int a, int b) __attribute__((always_inline)) {
                if (a > b) return;
                if (!edges_ready) setup_edges();
                const double ry[3] = {edx[0] * (qy - ey0[0]), edx[1] * (qy - ey0[1]), edx[2] * (qy - ey0[2])};
                auto inside = [&](int i, double qx) __attribute__((always_inline)) {
                    const double r = ry[i], c = edy[i] * (qx - ex0[i]);  // E = r - c: compared, not subtracted (no FMA)
                    return pos[i] ? (r > c || (r == c && tie[i])) : (r < c || (r == c && tie[i]));
                };
                for (int k = a; k <= b; ++k) {
                    const double qx = double(x0 + k) + 0.5;
                    if (!(inside(0, qx) && inside(1, qx) && inside(2, qx))) continue;
                    const float iz = izf0 + dzf * float(k);
                    if (iz > izrow[k]) {
                        izrow[k] = iz;
                        trow[k] = tid;
                    }
                }
            };
            if (ki0 > ki1) {
                edge_span(k0, k1);
                continue;
            }
            edge_span(k0, ki0 - 1);
            // interior: the depth test only, eight samples at a time (the lanes past the span are
            // written back unchanged), the row's last few samples one by one: the same float
            // operations in both, so the same bits
            int k = ki0;
            for (; k <= ki1; k += 8) {
                const int left = ki1 - k + 1;
                if (left < 8 && x0 + k + 8 > Ws) break;  // beyond the row's end (another thread's row)
                const F8 iz = izf0 + dzf * (float(k) + kLane8);
                F8 old;
                I8 tr;
                std::memcpy(&old, izrow + k, sizeof old);
                std::memcpy(&tr, trow + k, sizeof tr);
                I8 closer = iz > old;
                if (left < 8) closer &= kLane8 < float(left);
                const F8 nz = closer ? iz : old;
                const I8 nt = closer ? I8{} + tid : tr;
                std::memcpy(izrow + k, &nz, sizeof nz);
                std::memcpy(trow + k, &nt, sizeof nt);
            }
            for (; k <= ki1; ++k) {
                const float iz = izf0 + dzf * float(k);
                const bool closer = iz > izrow[k];
                izrow[k] = closer ? iz : izrow[k];
                trow[k] = closer ? tid : trow[k];
            }
            edge_span(ki1 + 1, k1);
        }
    }
}

#ifdef EMO3D_SSE2
namespace {
// 1/x and 1/sqrt(x) from the 12-bit hardware estimates plus one Newton step (~23 bits: float
// precision to within a few ulp, far below the 1/255 of an output level)
inline __m128 rcp_nr(__m128 x) {
    const __m128 r = _mm_rcp_ps(x);
    return _mm_mul_ps(r, _mm_sub_ps(_mm_set1_ps(2.f), _mm_mul_ps(x, r)));
}
inline __m128 rsqrt_nr(__m128 x) {
    const __m128 r = _mm_rsqrt_ps(x);
    return _mm_mul_ps(_mm_mul_ps(_mm_set1_ps(0.5f), r), _mm_sub_ps(_mm_set1_ps(3.f), _mm_mul_ps(_mm_mul_ps(x, r), r)));
}
// lanes where mask is set keep c, the others get the background value b
inline __m128 or_bg(__m128 mask, __m128 c, float b) {
    return _mm_or_ps(_mm_and_ps(mask, c), _mm_andnot_ps(mask, _mm_set1_ps(b)));
}
// (sum of r's lanes, sum of g's, sum of b's, 0): a 4x3 transpose-and-add in shuffles
inline __m128 sum_lanes3(__m128 r, __m128 g, __m128 b) {
    const __m128 zero = _mm_setzero_ps();
    const __m128 rg = _mm_add_ps(_mm_unpacklo_ps(r, g), _mm_unpackhi_ps(r, g));     // r0+r2 g0+g2 r1+r3 g1+g3
    const __m128 bb = _mm_add_ps(_mm_unpacklo_ps(b, zero), _mm_unpackhi_ps(b, zero));  // b0+b2 0 b1+b3 0
    return _mm_add_ps(_mm_movelh_ps(rg, bb), _mm_movehl_ps(bb, rg));
}

// What shade_quad reads besides the samples, copied into one local struct per shade_rows call: the
// compiler can keep it in registers (members would be reloaded after every byte of output written,
// since uint8_t stores may alias them).
struct ShadeCtx {
    const float* fplanes;
    const std::uint32_t* texels;
    int tex_w, tex_h;
    bool textured, colored;
    __m128 light0, light1, light2, ambient, diffuse;
    __m128 half0, half1, half2, gloss;  // Blinn-Phong half vector and specular * diffuse
    float bg[3];
};

// The lit 2x2 samples of one output pixel (lanes (qx, qy), (qx+1, qy), (qx, qy+1), (qx+1, qy+1)):
// which lanes are on the mesh, the light factor, the highlight, and the planes 7.. times 1/z (uv for
// a texture, the colour for vertex colours).
struct QuadLight {
    __m128 vmask, shade, spec, attr[3];
};

// The part of a textured quad's shading that reads the texture: the bilinear footprints' top-left
// texel indices and weights (computed, and their cache lines prefetched, a chunk of pixels ahead
// of the fetch: on a face the texture is minified, so most footprints miss the cache).
struct QuadTexel {
    __m128 vmask, shade, spec, fx, fy;
    __m128i idx;
};

// Each of four lanes at sample position (xs[l], ys[l]) on its triangle tq[l] (-1: background): the
// same shading as the scalar path, in single precision, four lanes at a time; n_attr of planes 7..9 are
// interpolated.
__attribute__((always_inline)) inline void light_lanes4(const ShadeCtx& cx, const std::int32_t* tq, const double* xs,
                                                        const double* ys, int n_attr, QuadLight& q) {
    // lanes off the mesh (tq < 0) read any valid lane's triangle and get bg
    std::int32_t any = tq[0] >= 0 ? tq[0] : tq[1] >= 0 ? tq[1] : tq[2] >= 0 ? tq[2] : tq[3];
    const float* Fl[4];
    bool valid[4];
    for (int l = 0; l < 4; ++l) {
        valid[l] = tq[l] >= 0;
        Fl[l] = cx.fplanes + std::size_t(valid[l] ? tq[l] : any) * MeshRenderer::kF;
    }
    const bool uniform = tq[0] == tq[1] && tq[0] == tq[2] && tq[0] == tq[3];
    q.vmask = _mm_castsi128_ps(_mm_setr_epi32(valid[0] ? -1 : 0, valid[1] ? -1 : 0, valid[2] ? -1 : 0,
                                              valid[3] ? -1 : 0));
    // sample offsets from each lane's triangle origin (exact: differences of half-integers)
    const __m128 X = _mm_setr_ps(float(xs[0] - Fl[0][0]), float(xs[1] - Fl[1][0]), float(xs[2] - Fl[2][0]),
                                 float(xs[3] - Fl[3][0]));
    const __m128 Y = _mm_setr_ps(float(ys[0] - Fl[0][1]), float(ys[1] - Fl[1][1]), float(ys[2] - Fl[2][1]),
                                 float(ys[3] - Fl[3][1]));
    auto ev4 = [&](int slot) {
        const int o = 2 + (slot - 3) * 3;
        if (uniform) {
            const float* f = Fl[0] + o;
            return _mm_add_ps(_mm_load1_ps(f + 2),
                              _mm_add_ps(_mm_mul_ps(_mm_load1_ps(f), X), _mm_mul_ps(_mm_load1_ps(f + 1), Y)));
        }
        const __m128 a = _mm_setr_ps(Fl[0][o], Fl[1][o], Fl[2][o], Fl[3][o]);
        const __m128 b = _mm_setr_ps(Fl[0][o + 1], Fl[1][o + 1], Fl[2][o + 1], Fl[3][o + 1]);
        const __m128 c = _mm_setr_ps(Fl[0][o + 2], Fl[1][o + 2], Fl[2][o + 2], Fl[3][o + 2]);
        return _mm_add_ps(c, _mm_add_ps(_mm_mul_ps(a, X), _mm_mul_ps(b, Y)));
    };
    const __m128 zero = _mm_setzero_ps();
    const __m128 nx = ev4(4), ny = ev4(5), nz = ev4(6);
    const __m128 l2 = _mm_add_ps(_mm_add_ps(_mm_mul_ps(nx, nx), _mm_mul_ps(ny, ny)), _mm_mul_ps(nz, nz));
    const __m128 dot = _mm_add_ps(_mm_add_ps(_mm_mul_ps(nx, cx.light0), _mm_mul_ps(ny, cx.light1)),
                                  _mm_mul_ps(nz, cx.light2));
    const __m128 inv_len = _mm_and_ps(_mm_cmpgt_ps(l2, _mm_set1_ps(1e-36f)), rsqrt_nr(l2));
    const __m128 ndl = _mm_mul_ps(dot, inv_len);
    q.shade = _mm_add_ps(cx.ambient, _mm_mul_ps(cx.diffuse, _mm_max_ps(ndl, zero)));
    // soft Blinn-Phong highlight, white: gloss * max(n.h, 0)^16 (SPECULAR_POWER in camera.py: four squarings)
    const __m128 ndh = _mm_max_ps(_mm_mul_ps(_mm_add_ps(_mm_add_ps(_mm_mul_ps(nx, cx.half0), _mm_mul_ps(ny, cx.half1)),
                                                        _mm_mul_ps(nz, cx.half2)), inv_len), zero);
    __m128 hl = _mm_mul_ps(ndh, ndh);
    hl = _mm_mul_ps(hl, hl);
    hl = _mm_mul_ps(hl, hl);
    q.spec = _mm_mul_ps(cx.gloss, _mm_mul_ps(hl, hl));
    if (n_attr > 0) {
        const __m128 rz = rcp_nr(ev4(3));
        for (int k = 0; k < n_attr; ++k) q.attr[k] = _mm_mul_ps(ev4(7 + k), rz);
    }
}

// light_lanes4 for the 2x2 samples of one output pixel: (qx, qy) its first sample
__attribute__((always_inline)) inline void light_quad(const ShadeCtx& cx, const std::int32_t* tq, double qx, double qy,
                                                      int n_attr, QuadLight& q) {
    const double xs[4] = {qx, qx + 1, qx, qx + 1}, ys[4] = {qy, qy, qy + 1, qy + 1};
    light_lanes4(cx, tq, xs, ys, n_attr, q);
}

// A lit quad's texture footprints: x = clamp(u (W-1), 0, W-1); x0 = min(floor x, W-2); fx = x - x0
// (likewise y), four lanes at once; the footprints' cache lines are prefetched.
__attribute__((always_inline)) inline void texel_quad(const ShadeCtx& cx, const QuadLight& q, QuadTexel& t) {
    const int tw = cx.tex_w, th = cx.tex_h;
    const __m128 zero = _mm_setzero_ps();
    const __m128 wm = _mm_set1_ps(float(tw - 1)), hm = _mm_set1_ps(float(th - 1));
    const __m128 xs = _mm_min_ps(_mm_max_ps(_mm_mul_ps(q.attr[0], wm), zero), wm);
    const __m128 ys = _mm_min_ps(_mm_max_ps(_mm_mul_ps(q.attr[1], hm), zero), hm);
    const __m128 x0f = _mm_min_ps(_mm_cvtepi32_ps(_mm_cvttps_epi32(xs)), _mm_set1_ps(float(std::max(tw - 2, 0))));
    const __m128 y0f = _mm_min_ps(_mm_cvtepi32_ps(_mm_cvttps_epi32(ys)), _mm_set1_ps(float(std::max(th - 2, 0))));
    t.vmask = q.vmask;
    t.shade = q.shade;
    t.spec = q.spec;
    t.fx = _mm_sub_ps(xs, x0f);
    t.fy = _mm_sub_ps(ys, y0f);
    // texel indices are exact in float (tex_w * tex_h <= 2^24, checked at construction)
    t.idx = _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(y0f, _mm_set1_ps(float(tw))), x0f));
    alignas(16) std::int32_t ia[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(ia), t.idx);
    const int dy1 = th > 1 ? tw : 0;
    for (int l = 0; l < 4; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(cx.texels + ia[l]), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(cx.texels + ia[l] + dy1 + 1), _MM_HINT_T0);
    }
}

// A textured quad's colours: the four lanes' 2x2 texel footprints are gathered into R, G, B vectors
// (16 scalar loads, structure of arrays), then the bilinear weights and shading apply to all lanes
// at once: each lane's R, G, B in 0..1 (the background where it is off) in rgb[0..2].
__attribute__((always_inline)) inline void fetch_lanes4(const ShadeCtx& cx, const QuadTexel& t, __m128* rgb) {
    const int tw = cx.tex_w, th = cx.tex_h;
    const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.f);
    alignas(16) std::int32_t ia[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(ia), t.idx);
    const int dx1 = tw > 1 ? 1 : 0;
    const int dy1 = th > 1 ? tw : 0;
    const std::uint32_t* T = cx.texels;
    const __m128i c00 = _mm_setr_epi32(int(T[ia[0]]), int(T[ia[1]]), int(T[ia[2]]), int(T[ia[3]]));
    const __m128i c01 = _mm_setr_epi32(int(T[ia[0] + dx1]), int(T[ia[1] + dx1]), int(T[ia[2] + dx1]),
                                       int(T[ia[3] + dx1]));
    const __m128i c10 = _mm_setr_epi32(int(T[ia[0] + dy1]), int(T[ia[1] + dy1]), int(T[ia[2] + dy1]),
                                       int(T[ia[3] + dy1]));
    const __m128i c11 = _mm_setr_epi32(int(T[ia[0] + dy1 + dx1]), int(T[ia[1] + dy1 + dx1]),
                                       int(T[ia[2] + dy1 + dx1]), int(T[ia[3] + dy1 + dx1]));
    const __m128 sh = _mm_mul_ps(t.shade, _mm_set1_ps(1.f / 255.f));
    const __m128i byte = _mm_set1_epi32(0xff);
    for (int k = 0; k < 3; ++k) {
        auto chan = [&](__m128i c) { return _mm_cvtepi32_ps(_mm_and_si128(_mm_srli_epi32(c, 8 * k), byte)); };
        const __m128 a00 = chan(c00), a01 = chan(c01), a10 = chan(c10), a11 = chan(c11);
        const __m128 top = _mm_add_ps(a00, _mm_mul_ps(_mm_sub_ps(a01, a00), t.fx));
        const __m128 bot = _mm_add_ps(a10, _mm_mul_ps(_mm_sub_ps(a11, a10), t.fx));
        const __m128 alb = _mm_add_ps(top, _mm_mul_ps(_mm_sub_ps(bot, top), t.fy));
        rgb[k] = or_bg(t.vmask, _mm_min_ps(_mm_max_ps(_mm_add_ps(_mm_mul_ps(alb, sh), t.spec), zero), one), cx.bg[k]);
    }
}

// fetch_lanes4 for the four samples of one pixel: the sums of their R, G, B in lanes 0..2
__attribute__((always_inline)) inline __m128 fetch_quad(const ShadeCtx& cx, const QuadTexel& t) {
    __m128 rgb[3];
    fetch_lanes4(cx, t, rgb);
    return sum_lanes3(rgb[0], rgb[1], rgb[2]);
}

// An untextured lit quad's colours (vertex colours, or 0.75 grey): each lane's R, G, B in rgb[0..2]
__attribute__((always_inline)) inline void color_lanes4(const ShadeCtx& cx, const QuadLight& q, __m128* rgb) {
    const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.f);
    for (int k = 0; k < 3; ++k) {
        const __m128 alb = cx.colored ? q.attr[k] : _mm_set1_ps(0.75f);
        rgb[k] = or_bg(q.vmask, _mm_min_ps(_mm_max_ps(_mm_add_ps(_mm_mul_ps(alb, q.shade), q.spec), zero), one), cx.bg[k]);
    }
}

// color_lanes4 for the four samples of one pixel: the sums of their R, G, B in lanes 0..2
__attribute__((always_inline)) inline __m128 color_quad(const ShadeCtx& cx, const QuadLight& q) {
    __m128 rgb[3];
    color_lanes4(cx, q, rgb);
    return sum_lanes3(rgb[0], rgb[1], rgb[2]);
}
}  // namespace
#endif

namespace {
// What every shading path (scalar, SSE, AVX2) derives once per call from the light and the options.
struct ShadeScalars {
    double half[3];          // Blinn-Phong half vector of the light and the viewer (+z); zero if they oppose
    double gloss;            // the highlight's strength: the key light's (diffuse) scales it
    std::uint8_t bg8[3];     // the background as an output pixel (the mean of its 4 samples, rounded half up)
};

inline ShadeScalars shade_scalars(const RenderConfig& cfg, const float* light) {
    ShadeScalars sc;
    double Hv[3] = {light[0], light[1], light[2] + 1.0};
    const double hn = std::sqrt(Hv[0] * Hv[0] + Hv[1] * Hv[1] + Hv[2] * Hv[2]);
    for (int k = 0; k < 3; ++k) sc.half[k] = hn > 1e-12 ? Hv[k] / hn : 0.0;
    sc.gloss = cfg.specular * cfg.diffuse;
    for (int k = 0; k < 3; ++k) {
        const double b = cfg.background[k];
        sc.bg8[k] = static_cast<std::uint8_t>(int((b + b + b + b) * 0.25 * 255.0 + 0.5));
    }
    return sc;
}
}  // namespace

EMO3D_HOT void MeshRenderer::shade_rows(Workspace& ws, const float* light, std::uint8_t* out, int r0, int r1) const {
    const int S = cfg_.ssaa, Ws = cfg_.width * S;
#if EMO3D_MULTIVERSIONED
    if (S == 2 && wide_kernels_) {
        shade_rows_v3(ws, light, out, r0, r1);
        return;
    }
#endif
    const double L[3] = {light[0], light[1], light[2]};
    const ShadeScalars sc = shade_scalars(cfg_, light);
    const double* Hv = sc.half;
    const double gloss = sc.gloss;
    const double inv = 1.0 / (S * S);
    const bool tex = !texels_.empty(), col = !colors_.empty();
    const std::uint8_t* bg8 = sc.bg8;
    const float bgf[3] = {float(cfg_.background[0]), float(cfg_.background[1]), float(cfg_.background[2])};
#ifdef EMO3D_SSE2
    ShadeCtx cx;
    cx.fplanes = ws.fplanes.data();
    cx.texels = texels_.data();
    cx.tex_w = tex_w_;
    cx.tex_h = tex_h_;
    cx.textured = tex;
    cx.colored = col;
    cx.light0 = _mm_set1_ps(light[0]);
    cx.light1 = _mm_set1_ps(light[1]);
    cx.light2 = _mm_set1_ps(light[2]);
    cx.ambient = _mm_set1_ps(float(cfg_.ambient));
    cx.diffuse = _mm_set1_ps(float(cfg_.diffuse));
    cx.half0 = _mm_set1_ps(float(Hv[0]));
    cx.half1 = _mm_set1_ps(float(Hv[1]));
    cx.half2 = _mm_set1_ps(float(Hv[2]));
    cx.gloss = _mm_set1_ps(float(gloss));
    for (int k = 0; k < 3; ++k) cx.bg[k] = bgf[k];
    const __m128 to255 = _mm_set1_ps(255.f / 4.f);
#endif
    const int width = cfg_.width;
#ifdef EMO3D_SSE2
    if (S == 2) {  // SSE path: the four samples of a pixel at once
        // the pixel's mean of its 4 samples in 0..255, rounded half up (as the scalar path)
        auto store = [&](int r, int cpx, __m128 sum) __attribute__((always_inline)) {
            alignas(16) std::int32_t v[4];
            _mm_store_si128(reinterpret_cast<__m128i*>(v),
                            _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(sum, to255), _mm_set1_ps(0.5f))));
            std::uint8_t* o = out + (std::size_t(r) * width + cpx) * 3;
            for (int k = 0; k < 3; ++k) o[k] = static_cast<std::uint8_t>(v[k]);
        };
        const int n_attr = tex ? 2 : col ? 3 : 0;
        // four pixels shaded at their centres: each lane's colour c -> c * 255 + 0.5 truncated (the mean
        // of four equal samples in store)
        auto store_centres = [&](int r, const int* cols, int n, const __m128* rgb) __attribute__((always_inline)) {
            alignas(16) std::int32_t v[3][4];
            for (int k = 0; k < 3; ++k)
                _mm_store_si128(reinterpret_cast<__m128i*>(v[k]),
                                _mm_cvttps_epi32(_mm_add_ps(_mm_mul_ps(rgb[k], _mm_set1_ps(255.f)), _mm_set1_ps(0.5f))));
            for (int l = 0; l < n; ++l) {
                std::uint8_t* o = out + (std::size_t(r) * width + cols[l]) * 3;
                for (int k = 0; k < 3; ++k) o[k] = static_cast<std::uint8_t>(v[k][l]);
            }
        };
        // Per chunk of kChunk pixels of a row: a pixel whose four samples all lie on one triangle is
        // queued and shaded once at its centre, four such pixels at a time; the others per sample.
        // Textured: the lit quads are set up (their texels prefetched), then fetched.
        constexpr int kChunk = 32;
        QuadTexel pend[kChunk];
        int pend_col[kChunk];
        QuadTexel upend[kChunk / 4];
        int ucols[kChunk];
        std::int32_t utri[4];
        for (int r = r0; r < r1; ++r) {
            const double yc = r * 2 + 1.0;
            for (int c0 = 0; c0 < width; c0 += kChunk) {
                const int c1 = std::min(width, c0 + kChunk);
                int n_pend = 0, n_u = 0, n_ub = 0;
                auto flush_centres = [&]() __attribute__((always_inline)) {
                    const int b0 = n_ub * 4, n = n_u - b0;
                    for (int l = n; l < 4; ++l) utri[l] = utri[0];  // spare lanes repeat the first pixel
                    double xc[4];
                    for (int l = 0; l < 4; ++l) xc[l] = ucols[b0 + (l < n ? l : 0)] * 2 + 1.0;
                    const double yq[4] = {yc, yc, yc, yc};
                    QuadLight q;
                    light_lanes4(cx, utri, xc, yq, n_attr, q);
                    if (tex) {
                        texel_quad(cx, q, upend[n_ub]);
                    } else {
                        __m128 rgb[3];
                        color_lanes4(cx, q, rgb);
                        store_centres(r, ucols + b0, n, rgb);
                    }
                    ++n_ub;
                };
                for (int cpx = c0; cpx < c1; ++cpx) {
                    const std::size_t i00 = std::size_t(r * 2 - ws.row0) * Ws + std::size_t(cpx) * 2;
                    const float* izq = ws.iz.data() + i00;
                    if (!(izq[0] > 0 || izq[1] > 0 || izq[Ws] > 0 || izq[Ws + 1] > 0)) {
                        std::uint8_t* o = out + (std::size_t(r) * width + cpx) * 3;
                        for (int k = 0; k < 3; ++k) o[k] = bg8[k];
                        continue;
                    }
                    const std::int32_t* tr = ws.tri.data() + i00;
                    const std::int32_t tq[4] = {izq[0] > 0 ? tr[0] : -1, izq[1] > 0 ? tr[1] : -1,
                                                izq[Ws] > 0 ? tr[Ws] : -1, izq[Ws + 1] > 0 ? tr[Ws + 1] : -1};
                    // most pixels lie on one triangle: one check, and one shading at the pixel's centre
                    if (tq[0] >= 0 && tq[0] == tq[1] && tq[0] == tq[2] && tq[0] == tq[3]) {
                        utri[n_u % 4] = tq[0];
                        ucols[n_u++] = cpx;
                        if (n_u % 4 == 0) flush_centres();
                        continue;
                    }
                    QuadLight q;
                    light_quad(cx, tq, cpx * 2 + 0.5, r * 2 + 0.5, n_attr, q);
                    if (tex) {
                        texel_quad(cx, q, pend[n_pend]);
                        pend_col[n_pend++] = cpx;
                    } else {
                        store(r, cpx, color_quad(cx, q));
                    }
                }
                if (n_u % 4) flush_centres();
                for (int i = 0; i < n_pend; ++i) store(r, pend_col[i], fetch_quad(cx, pend[i]));
                if (tex) {
                    for (int b = 0; b < n_ub; ++b) {
                        __m128 rgb[3];
                        fetch_lanes4(cx, upend[b], rgb);
                        store_centres(r, ucols + b * 4, std::min(4, n_u - b * 4), rgb);
                    }
                }
            }
        }
        return;
    }
#endif
    // the colour (0..1) of the surface of triangle t at sample position (qx, qy)
    auto shade_at = [&](std::int32_t t, double qx, double qy, double* c) {
        const double* P = &ws.planes[std::size_t(t) * kPlanes * 3];
        auto ev = [&](int slot) { return P[slot * 3] * qx + P[slot * 3 + 1] * qy + P[slot * 3 + 2]; };
        const double rz = 1.0 / ev(3);
        const double n[3] = {ev(4), ev(5), ev(6)};  // scale by rz irrelevant after normalising
        const double ln = std::sqrt(n[0] * n[0] + n[1] * n[1] + n[2] * n[2]);
        const double ndl = ln > 0 ? (n[0] * L[0] + n[1] * L[1] + n[2] * L[2]) / ln : 0.0;
        const double shade = cfg_.ambient + cfg_.diffuse * std::max(ndl, 0.0);
        const double ndh = ln > 0 ? std::max((n[0] * Hv[0] + n[1] * Hv[1] + n[2] * Hv[2]) / ln, 0.0) : 0.0;
        double hl = ndh * ndh;
        hl *= hl;
        hl *= hl;
        const double spec = gloss * hl * hl;   // ndh^16, SPECULAR_POWER
        double alb[3];
        if (tex) {
            const double u = ev(7) * rz, v = ev(8) * rz;
            const double x = clampd(u * (tex_w_ - 1), 0, tex_w_ - 1);
            const double y = clampd(v * (tex_h_ - 1), 0, tex_h_ - 1);
            // x, y >= 0, so truncation is floor (std::floor is a libm call without SSE4.1)
            const int x0 = std::min(int(x), std::max(tex_w_ - 2, 0));
            const int y0 = std::min(int(y), std::max(tex_h_ - 2, 0));
            const int x1 = std::min(x0 + 1, tex_w_ - 1), y1 = std::min(y0 + 1, tex_h_ - 1);
            const double fx = x - x0, fy = y - y0;
            const std::uint32_t p00 = texels_[std::size_t(y0) * tex_w_ + x0];
            const std::uint32_t p01 = texels_[std::size_t(y0) * tex_w_ + x1];
            const std::uint32_t p10 = texels_[std::size_t(y1) * tex_w_ + x0];
            const std::uint32_t p11 = texels_[std::size_t(y1) * tex_w_ + x1];
            for (int k = 0; k < 3; ++k) {
                auto ch = [k](std::uint32_t p) { return double((p >> (8 * k)) & 0xffu); };
                const double top = ch(p00) * (1 - fx) + ch(p01) * fx;
                const double bot = ch(p10) * (1 - fx) + ch(p11) * fx;
                alb[k] = (top * (1 - fy) + bot * fy) * (1.0 / 255.0);
            }
        } else if (col) {
            alb[0] = ev(7) * rz;
            alb[1] = ev(8) * rz;
            alb[2] = ev(9) * rz;
        } else {
            alb[0] = alb[1] = alb[2] = 0.75;
        }
        for (int k = 0; k < 3; ++k) c[k] = clampd(alb[k] * shade + spec, 0.0, 1.0);
    };
    for (int r = r0; r < r1; ++r) {
        for (int cpx = 0; cpx < width; ++cpx) {
            std::uint8_t* o = out + (std::size_t(r) * cfg_.width + cpx) * 3;
            // a pixel whose samples all lie on one triangle: shaded once, at its centre
            const std::size_t s0 = std::size_t(r * S - ws.row0) * Ws + std::size_t(cpx) * S;
            const std::int32_t t0 = ws.iz[s0] > 0 ? ws.tri[s0] : -1;
            bool one = t0 >= 0;
            for (int j = 0; j < S && one; ++j)
                for (int i = 0; i < S && one; ++i) {
                    const std::size_t si = s0 + std::size_t(j) * Ws + i;
                    one = ws.iz[si] > 0 && ws.tri[si] == t0;
                }
            if (one) {
                double c[3];
                shade_at(t0, cpx * S + S * 0.5, r * S + S * 0.5, c);
                for (int k = 0; k < 3; ++k) o[k] = static_cast<std::uint8_t>(int(c[k] * 255.0 + 0.5));
                continue;
            }
            double acc[3] = {0, 0, 0};
            for (int j = 0; j < S; ++j) {
                const int py = r * S + j;
                const double qy = py + 0.5;
                for (int i = 0; i < S; ++i) {
                    const int px = cpx * S + i;
                    const std::size_t si = std::size_t(py - ws.row0) * Ws + px;
                    const std::int32_t t = ws.iz[si] > 0 ? ws.tri[si] : -1;
                    if (t < 0) {
                        acc[0] += cfg_.background[0];
                        acc[1] += cfg_.background[1];
                        acc[2] += cfg_.background[2];
                        continue;
                    }
                    double c[3];
                    shade_at(t, px + 0.5, qy, c);
                    for (int k = 0; k < 3; ++k) acc[k] += c[k];
                }
            }
            for (int k = 0; k < 3; ++k) o[k] = static_cast<std::uint8_t>(int(acc[k] * inv * 255.0 + 0.5));
        }
    }
}

#if EMO3D_MULTIVERSIONED
namespace {
// shade_rows_v3's counterparts of ShadeCtx, QuadLight and QuadTexel: two pixels' 2x2 samples in
// eight lanes, (qx, qy), (qx+1, qy), (qx, qy+1), (qx+1, qy+1), then the same for the pixel at qx+2
struct ShadeCtx8 {
    const float* fplanes;
    const std::uint32_t* texels;
    int tex_w, tex_h;
    bool textured, colored;
    __m256 light0, light1, light2, ambient, diffuse;
    __m256 half0, half1, half2, gloss;
    float bg[3];
};
struct PairLight {
    __m256 vmask, shade, spec, attr[3];
};
struct PairTexel {
    __m256 vmask, shade, spec, fx, fy;
    __m256i idx;
};

EMO3D_V3 __attribute__((always_inline)) inline __m256 rcp_nr8(__m256 x) {
    const __m256 r = _mm256_rcp_ps(x);
    return _mm256_mul_ps(r, _mm256_sub_ps(_mm256_set1_ps(2.f), _mm256_mul_ps(x, r)));
}
EMO3D_V3 __attribute__((always_inline)) inline __m256 rsqrt_nr8(__m256 x) {
    const __m256 r = _mm256_rsqrt_ps(x);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), r),
                         _mm256_sub_ps(_mm256_set1_ps(3.f), _mm256_mul_ps(_mm256_mul_ps(x, r), r)));
}
EMO3D_V3 __attribute__((always_inline)) inline __m256 or_bg8(__m256 mask, __m256 c, float b) {
    return _mm256_blendv_ps(_mm256_set1_ps(b), c, mask);
}
// components o..o+7 of the eight lanes' triangle planes: out[j] holds component o + j of every lane
// (an 8x8 transpose of eight rows read from the lanes' planes)
EMO3D_V3 __attribute__((always_inline)) inline void transpose_planes(const float* const* Fl, int o, __m256* out) {
    __m256 r[8], t[8];
    for (int l = 0; l < 8; ++l) r[l] = _mm256_loadu_ps(Fl[l] + o);
    for (int l = 0; l < 8; l += 2) {
        t[l] = _mm256_unpacklo_ps(r[l], r[l + 1]);
        t[l + 1] = _mm256_unpackhi_ps(r[l], r[l + 1]);
    }
    for (int h = 0; h < 8; h += 4) {
        r[h] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[h + 1] = _mm256_shuffle_ps(t[h], t[h + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[h + 2] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[h + 3] = _mm256_shuffle_ps(t[h + 1], t[h + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; ++j) {
        out[j] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x20);
        out[j + 4] = _mm256_permute2f128_ps(r[j], r[j + 4], 0x31);
    }
}
// component o of each lane's triangle planes: one triangle (mode 0), one per pixel (1), or one per
// lane (2: from the transposed components P)
EMO3D_V3 __attribute__((always_inline)) inline __m256 lane_planes(const float* const* Fl, int mode, const __m256* P,
                                                                  int o) {
    if (mode == 0) return _mm256_broadcast_ss(Fl[0] + o);
    if (mode == 1)
        return _mm256_insertf128_ps(_mm256_castps128_ps256(_mm_broadcast_ss(Fl[0] + o)), _mm_broadcast_ss(Fl[4] + o), 1);
    return P[o];
}

// light_quad for eight lanes at sample positions (xs, ys); tq: the lanes' triangles (-1: background, not
// all of them)
EMO3D_V3 __attribute__((always_inline)) inline void light_lanes(const ShadeCtx8& cx, const std::int32_t* tq, __m256 xs,
                                                                __m256 ys, int n_attr, PairLight& q) {
    std::int32_t any = tq[0];
    for (int l = 1; l < 8; ++l) any = any >= 0 ? any : tq[l];
    const float* Fl[8];
    for (int l = 0; l < 8; ++l) Fl[l] = cx.fplanes + std::size_t(tq[l] >= 0 ? tq[l] : any) * MeshRenderer::kF;
    q.vmask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(tq)),
                                                     _mm256_set1_epi32(-1)));
    const bool u0 = Fl[0] == Fl[1] && Fl[0] == Fl[2] && Fl[0] == Fl[3];
    const bool u1 = Fl[4] == Fl[5] && Fl[4] == Fl[6] && Fl[4] == Fl[7];
    const int mode = u0 && u1 ? (Fl[0] == Fl[4] ? 0 : 1) : 2;
    const int n_ev = n_attr > 0 ? 4 + n_attr : 4;  // planes 3.. to evaluate: components 0 .. 3 n_ev + 1
    __m256 P[MeshRenderer::kF];
    if (mode == 2)
        for (int o = 0; o < 3 * n_ev + 2; o += 8) transpose_planes(Fl, o, P + o);
    // sample offsets from each lane's triangle origin (exact in float: differences of half-integers)
    const __m256 X = _mm256_sub_ps(xs, lane_planes(Fl, mode, P, 0));
    const __m256 Y = _mm256_sub_ps(ys, lane_planes(Fl, mode, P, 1));
    __m256 ev[7];  // planes 3..9 at the samples
    for (int k = 0; k < n_ev; ++k) {
        const int o = 2 + k * 3;
        ev[k] = _mm256_add_ps(lane_planes(Fl, mode, P, o + 2),
                              _mm256_add_ps(_mm256_mul_ps(lane_planes(Fl, mode, P, o), X),
                                            _mm256_mul_ps(lane_planes(Fl, mode, P, o + 1), Y)));
    }
    const __m256 zero = _mm256_setzero_ps();
    const __m256 nx = ev[1], ny = ev[2], nz = ev[3];
    const __m256 l2 = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(nx, nx), _mm256_mul_ps(ny, ny)), _mm256_mul_ps(nz, nz));
    const __m256 dot = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(nx, cx.light0), _mm256_mul_ps(ny, cx.light1)),
                                     _mm256_mul_ps(nz, cx.light2));
    const __m256 inv_len = _mm256_and_ps(_mm256_cmp_ps(l2, _mm256_set1_ps(1e-36f), _CMP_GT_OQ), rsqrt_nr8(l2));
    const __m256 ndl = _mm256_mul_ps(dot, inv_len);
    q.shade = _mm256_add_ps(cx.ambient, _mm256_mul_ps(cx.diffuse, _mm256_max_ps(ndl, zero)));
    const __m256 ndh = _mm256_max_ps(
        _mm256_mul_ps(_mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(nx, cx.half0), _mm256_mul_ps(ny, cx.half1)),
                                    _mm256_mul_ps(nz, cx.half2)), inv_len), zero);
    __m256 hl = _mm256_mul_ps(ndh, ndh);
    hl = _mm256_mul_ps(hl, hl);
    hl = _mm256_mul_ps(hl, hl);
    q.spec = _mm256_mul_ps(cx.gloss, _mm256_mul_ps(hl, hl));
    if (n_attr > 0) {
        const __m256 rz = rcp_nr8(ev[0]);
        for (int k = 0; k < n_attr; ++k) q.attr[k] = _mm256_mul_ps(ev[4 + k], rz);
    }
}

// texel_quad for two pixels
EMO3D_V3 __attribute__((always_inline)) inline void texel_pair(const ShadeCtx8& cx, const PairLight& q, PairTexel& t) {
    const int tw = cx.tex_w, th = cx.tex_h;
    const __m256 zero = _mm256_setzero_ps();
    const __m256 wm = _mm256_set1_ps(float(tw - 1)), hm = _mm256_set1_ps(float(th - 1));
    const __m256 xs = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(q.attr[0], wm), zero), wm);
    const __m256 ys = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(q.attr[1], hm), zero), hm);
    const __m256 x0f = _mm256_min_ps(_mm256_round_ps(xs, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC),
                                     _mm256_set1_ps(float(std::max(tw - 2, 0))));
    const __m256 y0f = _mm256_min_ps(_mm256_round_ps(ys, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC),
                                     _mm256_set1_ps(float(std::max(th - 2, 0))));
    t.vmask = q.vmask;
    t.shade = q.shade;
    t.spec = q.spec;
    t.fx = _mm256_sub_ps(xs, x0f);
    t.fy = _mm256_sub_ps(ys, y0f);
    t.idx = _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(y0f, _mm256_set1_ps(float(tw))), x0f));
    alignas(32) std::int32_t ia[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(ia), t.idx);
    const int dy1 = th > 1 ? tw : 0;
    for (int l = 0; l < 8; ++l) {
        _mm_prefetch(reinterpret_cast<const char*>(cx.texels + ia[l]), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(cx.texels + ia[l] + dy1 + 1), _MM_HINT_T0);
    }
}

// fetch_quad for eight lanes (AVX2 gathers): each lane's R, G, B in 0..1 (the background where it is off)
EMO3D_V3 __attribute__((always_inline)) inline void fetch_lanes(const ShadeCtx8& cx, const PairTexel& t, __m256* rgb) {
    const int tw = cx.tex_w, th = cx.tex_h;
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    const __m256i dx1 = _mm256_set1_epi32(tw > 1 ? 1 : 0), dy1 = _mm256_set1_epi32(th > 1 ? tw : 0);
    const int* T = reinterpret_cast<const int*>(cx.texels);
    const __m256i i01 = _mm256_add_epi32(t.idx, dx1), i10 = _mm256_add_epi32(t.idx, dy1);
    const __m256i c00 = _mm256_i32gather_epi32(T, t.idx, 4);
    const __m256i c01 = _mm256_i32gather_epi32(T, i01, 4);
    const __m256i c10 = _mm256_i32gather_epi32(T, i10, 4);
    const __m256i c11 = _mm256_i32gather_epi32(T, _mm256_add_epi32(i10, dx1), 4);
    const __m256 sh = _mm256_mul_ps(t.shade, _mm256_set1_ps(1.f / 255.f));
    const __m256i byte = _mm256_set1_epi32(0xff);
    for (int k = 0; k < 3; ++k) {
        const __m256 a00 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(c00, 8 * k), byte));
        const __m256 a01 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(c01, 8 * k), byte));
        const __m256 a10 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(c10, 8 * k), byte));
        const __m256 a11 = _mm256_cvtepi32_ps(_mm256_and_si256(_mm256_srli_epi32(c11, 8 * k), byte));
        const __m256 top = _mm256_add_ps(a00, _mm256_mul_ps(_mm256_sub_ps(a01, a00), t.fx));
        const __m256 bot = _mm256_add_ps(a10, _mm256_mul_ps(_mm256_sub_ps(a11, a10), t.fx));
        const __m256 alb = _mm256_add_ps(top, _mm256_mul_ps(_mm256_sub_ps(bot, top), t.fy));
        rgb[k] = or_bg8(t.vmask, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(alb, sh), t.spec), zero), one),
                        cx.bg[k]);
    }
}

// the sums of each pixel's R, G, B (lanes 0..3 the left pixel's samples, 4..7 the right one's) in lanes 0..2
// of s0, s1
EMO3D_V3 __attribute__((always_inline)) inline void sum_pair(const __m256* rgb, __m128& s0, __m128& s1) {
    s0 = sum_lanes3(_mm256_castps256_ps128(rgb[0]), _mm256_castps256_ps128(rgb[1]), _mm256_castps256_ps128(rgb[2]));
    s1 = sum_lanes3(_mm256_extractf128_ps(rgb[0], 1), _mm256_extractf128_ps(rgb[1], 1), _mm256_extractf128_ps(rgb[2], 1));
}

// fetch_quad for two pixels: the sums of each pixel's R, G, B in lanes 0..2 of s0, s1
EMO3D_V3 __attribute__((always_inline)) inline void fetch_pair(const ShadeCtx8& cx, const PairTexel& t, __m128& s0,
                                                               __m128& s1) {
    __m256 rgb[3];
    fetch_lanes(cx, t, rgb);
    sum_pair(rgb, s0, s1);
}

// color_quad for eight lanes: each lane's R, G, B in 0..1
EMO3D_V3 __attribute__((always_inline)) inline void color_lanes(const ShadeCtx8& cx, const PairLight& q, __m256* rgb) {
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    for (int k = 0; k < 3; ++k) {
        const __m256 alb = cx.colored ? q.attr[k] : _mm256_set1_ps(0.75f);
        rgb[k] = or_bg8(q.vmask, _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(_mm256_mul_ps(alb, q.shade), q.spec), zero), one),
                        cx.bg[k]);
    }
}

// lanes (2p, 2p+1) swapped: a sample's neighbour in its pixel's row
EMO3D_V3 __attribute__((always_inline)) inline __m256 swap_pairs(__m256 x) {
    return _mm256_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1));
}
// one bit per pixel (per pair of lanes, both set or both clear)
EMO3D_V3 __attribute__((always_inline)) inline unsigned pixel_bits(__m256 x) {
    return unsigned(_mm256_movemask_pd(_mm256_castps_pd(x)));
}
EMO3D_V3 __attribute__((always_inline)) inline __m256 eq_lanes(__m256i x, __m256i y) {
    return _mm256_castsi256_ps(_mm256_cmpeq_epi32(x, y));
}

// color_quad for two pixels
EMO3D_V3 __attribute__((always_inline)) inline void color_pair(const ShadeCtx8& cx, const PairLight& q, __m128& s0,
                                                               __m128& s1) {
    __m256 rgb[3];
    color_lanes(cx, q, rgb);
    sum_pair(rgb, s0, s1);
}
}  // namespace

EMO3D_V3 void MeshRenderer::shade_rows_v3(Workspace& ws, const float* light, std::uint8_t* out, int r0, int r1) const {
    const int width = cfg_.width, Ws = width * 2;
    const ShadeScalars sc = shade_scalars(cfg_, light);
    const double* Hv = sc.half;
    const bool tex = !texels_.empty(), col = !colors_.empty();
    const std::uint8_t* bg8 = sc.bg8;
    ShadeCtx8 cx;
    for (int k = 0; k < 3; ++k) cx.bg[k] = float(cfg_.background[k]);
    cx.fplanes = ws.fplanes.data();
    cx.texels = texels_.data();
    cx.tex_w = tex_w_;
    cx.tex_h = tex_h_;
    cx.textured = tex;
    cx.colored = col;
    cx.light0 = _mm256_set1_ps(light[0]);
    cx.light1 = _mm256_set1_ps(light[1]);
    cx.light2 = _mm256_set1_ps(light[2]);
    cx.ambient = _mm256_set1_ps(float(cfg_.ambient));
    cx.diffuse = _mm256_set1_ps(float(cfg_.diffuse));
    cx.half0 = _mm256_set1_ps(float(Hv[0]));
    cx.half1 = _mm256_set1_ps(float(Hv[1]));
    cx.half2 = _mm256_set1_ps(float(Hv[2]));
    cx.gloss = _mm256_set1_ps(float(sc.gloss));
    const __m128 to255 = _mm_set1_ps(255.f / 4.f), half = _mm_set1_ps(0.5f);
    const int n_attr = tex ? 2 : col ? 3 : 0;
    // pixel cpx of row r: the mean of its 4 samples in 0..255, rounded half up; bg8 where it has none
    std::uint8_t* const out_rows = out;
    auto store = [out_rows, width, to255, half, bg8](int r, int cpx, bool on, __m128 sum) __attribute__((always_inline)) {
        std::uint8_t* o = out_rows + (std::size_t(r) * width + cpx) * 3;
        if (!on) {
            for (int k = 0; k < 3; ++k) o[k] = bg8[k];
            return;
        }
        alignas(16) float v[4];
        _mm_store_ps(v, _mm_add_ps(_mm_mul_ps(sum, to255), half));
        for (int k = 0; k < 3; ++k) o[k] = static_cast<std::uint8_t>(int(v[k]));
    };
    // eight pixels shaded at their centres (uniform pixels): each lane's colour c in 0..1 -> c * 255 + 0.5
    // truncated, the same number as the mean of four equal samples in store
    auto store_centres = [out_rows, width](int r, const int* cols, int n, const __m256* rgb)
        __attribute__((always_inline, target("arch=x86-64-v3"))) {
        alignas(32) std::int32_t v[3][8];
        const __m256 s255 = _mm256_set1_ps(255.f), h = _mm256_set1_ps(0.5f);
        for (int k = 0; k < 3; ++k)
            _mm256_store_si256(reinterpret_cast<__m256i*>(v[k]), _mm256_cvttps_epi32(_mm256_add_ps(_mm256_mul_ps(rgb[k], s255), h)));
        for (int l = 0; l < n; ++l) {
            std::uint8_t* o = out_rows + (std::size_t(r) * width + cols[l]) * 3;
            for (int k = 0; k < 3; ++k) o[k] = static_cast<std::uint8_t>(v[k][l]);
        }
    };
    // Per chunk of kChunk pixels of a row: a pixel whose four samples all lie on one triangle (three in
    // four on the default head at 256^2) is queued and shaded once at its centre, eight such pixels at a
    // time; any other pixel with a sample on the mesh (a triangle edge, a silhouette) is queued and
    // shaded per sample, two such pixels (eight samples) at a time. Textured: the lit lanes are set up
    // (their texels prefetched), then fetched at the end of the chunk.
    constexpr int kChunk = 32;
    PairTexel pend[kChunk / 2];           // the edge pixels' lanes, two pixels each
    int pend_col[kChunk];
    PairTexel upend[kChunk / 8];          // the centre pixels' lanes, eight pixels each
    int ucols[kChunk];
    alignas(32) std::int32_t utri[8];     // the triangles of the centre batch being filled
    alignas(32) std::int32_t mtq[8];      // the samples' triangles of the edge pair being filled
    const float* iz = ws.iz.data();
    const std::int32_t* tri = ws.tri.data();
    const __m256 sx8 = _mm256_setr_ps(0.5f, 1.5f, 0.5f, 1.5f, 0.5f, 1.5f, 0.5f, 1.5f);
    for (int r = r0; r < r1; ++r) {
        const __m256 ycentre = _mm256_set1_ps(float(r * 2 + 1));
        const __m256 ysamples = _mm256_add_ps(_mm256_set1_ps(float(r * 2)),
                                              _mm256_setr_ps(0.5f, 0.5f, 1.5f, 1.5f, 0.5f, 0.5f, 1.5f, 1.5f));
        for (int c0 = 0; c0 < width; c0 += kChunk) {
            const int c1 = std::min(width, c0 + kChunk);
            int n_m = 0, n_u = 0, n_ub = 0;
            // the batch of queued centre pixels (n_u % 8 of them, 8 but at the chunk's end)
            auto flush_centres = [&]() __attribute__((always_inline, target("arch=x86-64-v3"))) {
                const int b0 = n_ub * 8, n = n_u - b0;
                for (int l = n; l < 8; ++l) utri[l] = utri[0];  // spare lanes repeat the first pixel
                alignas(32) float xc[8];
                for (int l = 0; l < 8; ++l) xc[l] = float(ucols[b0 + (l < n ? l : 0)] * 2 + 1);
                PairLight q;
                light_lanes(cx, utri, _mm256_load_ps(xc), ycentre, n_attr, q);
                if (tex) {
                    texel_pair(cx, q, upend[n_ub]);
                } else {
                    __m256 rgb[3];
                    color_lanes(cx, q, rgb);
                    store_centres(r, ucols + b0, n, rgb);
                }
                ++n_ub;
            };
            // the pair of queued edge pixels (the second one absent at the chunk's end: n_m odd)
            auto flush_edges = [&]() __attribute__((always_inline, target("arch=x86-64-v3"))) {
                const int i = (n_m - 1) / 2 * 2, n = n_m - i;
                if (n == 1)
                    for (int l = 4; l < 8; ++l) mtq[l] = -1;
                const float xa = float(pend_col[i] * 2), xb = float(pend_col[i + n - 1] * 2);
                const __m256 xs = _mm256_add_ps(_mm256_setr_m128(_mm_set1_ps(xa), _mm_set1_ps(xb)), sx8);
                PairLight q;
                light_lanes(cx, mtq, xs, ysamples, n_attr, q);
                if (tex) {
                    texel_pair(cx, q, pend[i / 2]);
                } else {
                    __m128 s0, s1;
                    color_pair(cx, q, s0, s1);
                    store(r, pend_col[i], true, s0);
                    if (n == 2) store(r, pend_col[i + 1], true, s1);
                }
            };
            // pixel c, whose samples' triangles are t[0..3] (-1: off the mesh) with on-mesh bits m4
            auto pixel = [&](const std::int32_t* t, int m4, int c) __attribute__((always_inline, target("arch=x86-64-v3"))) {
                if (!m4) {
                    store(r, c, false, _mm_setzero_ps());
                    return;
                }
                if (m4 == 15 && t[0] == t[1] && t[0] == t[2] && t[0] == t[3]) {
                    utri[n_u % 8] = t[0];
                    ucols[n_u++] = c;
                    if (n_u % 8 == 0) flush_centres();
                    return;
                }
                std::memcpy(mtq + (n_m % 2) * 4, t, 4 * sizeof(std::int32_t));
                pend_col[n_m++] = c;
                if (n_m % 2 == 0) flush_edges();
            };
            // eight pixels at a time: which are off the mesh, which lie on one triangle (their four samples
            // hit and name the same triangle), which are edge pixels; one bit per pixel from 64-bit lanes
            // (a pixel's two samples of a row), then each pixel goes where pixel() would send it
            int cpx = c0;
            for (; cpx + 8 <= c1; cpx += 8) {
                const std::size_t i00 = std::size_t(r * 2 - ws.row0) * Ws + std::size_t(cpx) * 2;
                const float* z0 = iz + i00;
                const std::int32_t* t0 = tri + i00;
                const __m256 zero = _mm256_setzero_ps();
                const __m256 ha0 = _mm256_cmp_ps(_mm256_loadu_ps(z0), zero, _CMP_GT_OQ);
                const __m256 ha1 = _mm256_cmp_ps(_mm256_loadu_ps(z0 + 8), zero, _CMP_GT_OQ);
                const __m256 hb0 = _mm256_cmp_ps(_mm256_loadu_ps(z0 + Ws), zero, _CMP_GT_OQ);
                const __m256 hb1 = _mm256_cmp_ps(_mm256_loadu_ps(z0 + Ws + 8), zero, _CMP_GT_OQ);
                const __m256 any0 = _mm256_or_ps(ha0, hb0), any1 = _mm256_or_ps(ha1, hb1);
                const unsigned on = pixel_bits(_mm256_or_ps(any0, swap_pairs(any0))) |
                                    pixel_bits(_mm256_or_ps(any1, swap_pairs(any1))) << 4;
                if (!on) {
                    for (int p = 0; p < 8; ++p) store(r, cpx + p, false, _mm_setzero_ps());
                    continue;
                }
                const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t0));
                const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t0 + 8));
                const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t0 + Ws));
                const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(t0 + Ws + 8));
                // per sample column: both rows hit, the same triangle in both rows and as the row's other sample
                const __m256 f0 = _mm256_and_ps(_mm256_and_ps(_mm256_and_ps(ha0, hb0), eq_lanes(a0, b0)),
                                                eq_lanes(a0, _mm256_castps_si256(swap_pairs(_mm256_castsi256_ps(a0)))));
                const __m256 f1 = _mm256_and_ps(_mm256_and_ps(_mm256_and_ps(ha1, hb1), eq_lanes(a1, b1)),
                                                eq_lanes(a1, _mm256_castps_si256(swap_pairs(_mm256_castsi256_ps(a1)))));
                const unsigned uni = pixel_bits(_mm256_and_ps(f0, swap_pairs(f0))) |
                                     pixel_bits(_mm256_and_ps(f1, swap_pairs(f1))) << 4;
                for (unsigned b = ~on & 0xffu; b; b &= b - 1) store(r, cpx + __builtin_ctz(b), false, _mm_setzero_ps());
                for (unsigned b = uni; b; b &= b - 1) {
                    const int p = __builtin_ctz(b);
                    const std::int32_t t = t0[2 * p];
                    utri[n_u % 8] = t;
                    ucols[n_u++] = cpx + p;
                    if (n_u % 8 == 0) flush_centres();
                }
                for (unsigned b = on & ~uni; b; b &= b - 1) {
                    const int p = __builtin_ctz(b);
                    const std::size_t s[4] = {std::size_t(2 * p), std::size_t(2 * p + 1), std::size_t(Ws + 2 * p),
                                              std::size_t(Ws + 2 * p + 1)};
                    std::int32_t tq[4];
                    int m4 = 0;
                    for (int l = 0; l < 4; ++l) {
                        tq[l] = z0[s[l]] > 0 ? t0[s[l]] : -1;
                        m4 |= tq[l] >= 0 ? 1 << l : 0;
                    }
                    pixel(tq, m4, cpx + p);
                }
            }
            for (; cpx < c1; cpx += 2) {
                const std::size_t i00 = std::size_t(r * 2 - ws.row0) * Ws + std::size_t(cpx) * 2;
                alignas(32) std::int32_t tq[8];
                int m;  // the samples on the mesh: bits 0..3 pixel cpx's, 4..7 pixel cpx + 1's
                if (cpx + 1 < c1) {
                    // samples (0..3, row 0) and (0..3, row 1) of the two pixels, into the lane order
                    const __m128 za = _mm_loadu_ps(iz + i00), zb = _mm_loadu_ps(iz + i00 + Ws);
                    const __m128i ta = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tri + i00));
                    const __m128i tb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(tri + i00 + Ws));
                    const __m256 z8 = _mm256_set_m128(_mm_movehl_ps(zb, za), _mm_movelh_ps(za, zb));
                    const __m256i t8 = _mm256_set_m128i(_mm_unpackhi_epi64(ta, tb), _mm_unpacklo_epi64(ta, tb));
                    const __m256 hit = _mm256_cmp_ps(z8, _mm256_setzero_ps(), _CMP_GT_OQ);
                    m = _mm256_movemask_ps(hit);
                    if (!m) {
                        store(r, cpx, false, _mm_setzero_ps());
                        store(r, cpx + 1, false, _mm_setzero_ps());
                        continue;
                    }
                    _mm256_store_si256(reinterpret_cast<__m256i*>(tq),
                                       _mm256_blendv_epi8(_mm256_set1_epi32(-1), t8, _mm256_castps_si256(hit)));
                    pixel(tq, m & 15, cpx);
                    pixel(tq + 4, m >> 4, cpx + 1);
                } else {  // the last pixel of an odd width
                    const float* izq = iz + i00;
                    const std::int32_t* tr = tri + i00;
                    const int idx[4] = {0, 1, Ws, Ws + 1};
                    m = 0;
                    for (int l = 0; l < 4; ++l) {
                        tq[l] = izq[idx[l]] > 0 ? tr[idx[l]] : -1;
                        m |= tq[l] >= 0 ? 1 << l : 0;
                    }
                    pixel(tq, m, cpx);
                }
            }
            if (n_u % 8) flush_centres();
            if (n_m % 2) flush_edges();
            if (tex) {
                for (int i = 0; i < n_m; i += 2) {
                    __m128 s0, s1;
                    fetch_pair(cx, pend[i / 2], s0, s1);
                    store(r, pend_col[i], true, s0);
                    if (i + 1 < n_m) store(r, pend_col[i + 1], true, s1);
                }
                for (int b = 0; b < n_ub; ++b) {
                    __m256 rgb[3];
                    fetch_lanes(cx, upend[b], rgb);
                    store_centres(r, ucols + b * 8, std::min(8, n_u - b * 8), rgb);
                }
            }
        }
    }
}
#endif

template <class VertFn>
void MeshRenderer::run(std::int64_t n_frames, const float* rot, const float* light, std::uint8_t* out,
                       VertFn&& verts_of) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::size_t frame_bytes = std::size_t(cfg_.width) * cfg_.height * 3;
    if (n_frames >= 2 && n_threads_ > 1) {
        const int k = static_cast<int>(std::min<std::int64_t>(n_threads_, n_frames));
        ensure_workspaces(k);
        auto work = [&](int w) {
            Workspace& ws = ws_[w];
            for (std::int64_t f = w; f < n_frames; f += k) {
                prepare(ws, verts_of(f, ws, 1), rot, 1);
                setup_triangles(ws, 0, n_tris_);
                draw(ws, light, out + f * frame_bytes, false);
            }
        };
        pool_->run(k, work);
        return;
    }
    Workspace& ws = ws_[0];
    const std::int64_t samples = std::int64_t(cfg_.width) * cfg_.ssaa * cfg_.height * cfg_.ssaa;
    const int threads = samples >= kSplitSamples ? n_threads_ : 1;
    for (std::int64_t f = 0; f < n_frames; ++f) {
        prepare(ws, verts_of(f, ws, threads), rot, threads);
        pool_->for_chunks(n_tris_, n_tris_ >= 8192 ? threads : 1,
                          [&](std::int64_t t0, std::int64_t t1) { setup_triangles(ws, t0, t1); });
        draw(ws, light, out + f * frame_bytes, threads > 1);
    }
}

void MeshRenderer::draw(Workspace& ws, const float* light, std::uint8_t* o, bool share) {
    const int S = cfg_.ssaa;
    ws.row0 = 0;
    if (cfg_.height < 2 * kBandRows) {  // a small image: one pass over all triangles, no binning
        raster_rows(ws, 0, cfg_.height * S, nullptr, 0);
        shade_rows(ws, light, o, 0, cfg_.height);
        return;
    }
    // Bands of kBandRows output rows, each rasterised then shaded while its part of the sample
    // buffers is in cache, from the triangles binned to it (ascending ids: the same image as one pass
    // over all triangles). Shared: whichever thread is free takes the next band, so no thread waits
    // on another's share of the face (uneven triangle density, a thread descheduled on a busy machine).
    const int n_bands = (cfg_.height + kBandRows - 1) / kBandRows;
    bin_triangles(ws, n_bands);
    auto band = [&](int b) {
        const int r0 = b * kBandRows, r1 = std::min(cfg_.height, r0 + kBandRows);
        const std::int64_t s = ws.bin_start[b];
        raster_rows(ws, r0 * S, r1 * S, ws.bin_tris.data() + s, ws.bin_start[b + 1] - s);
        shade_rows(ws, light, o, r0, r1);
    };
    if (share && n_threads_ > 1) {
        pool_->run(n_bands, band);
    } else {
        for (int b = 0; b < n_bands; ++b) {
            ws.row0 = b * kBandRows * S;
            band(b);
        }
    }
}

void MeshRenderer::render(const float* weights, std::int64_t n_frames, const float* rot, const float* light,
                          std::uint8_t* out) {
    run(n_frames, rot, light, out, [&](std::int64_t f, Workspace& ws, int threads) -> const float* {
        deform_runs(base_.data(), deltas_, weights + f * n_targets_, ws.verts.data(), 1, threads, pool_.get());
        return ws.verts.data();
    });
}

void MeshRenderer::render_vertices(const float* verts, std::int64_t n_frames, const float* rot,
                                   const float* light, std::uint8_t* out) {
    run(n_frames, rot, light, out, [&](std::int64_t f, Workspace&, int) -> const float* {
        return verts + f * n_vertices_ * 3;
    });
}

}  // namespace emo3d

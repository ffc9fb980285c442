// Software rasteriser for blendshape rigs: sparse deformation, vertex normals, perspective camera,
// z-buffer, perspective-correct texture / vertex colour, Lambert + ambient + a Blinn-Phong highlight
// (exponent 16), supersampling.
// Conventions are those of native/reference_render.py (its docstring); the two must agree.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "cpu_dispatch.hpp"
#include "deform_runs.hpp"
#include "huge_pages.hpp"
#include "parallel.hpp"

namespace emo3d {

struct RenderConfig {
    int width = 256, height = 256, ssaa = 2;
    double center[3] = {0, 0, 0};
    double dist = 1.0, tan_half = 0.17632698;
    double ambient = 0.35, diffuse = 0.75;
    double specular = 0.0;  // white highlight strength, times diffuse (the key light)
    double background[3] = {0, 0, 0};  // 0..1
    int threads = 0;
};

class MeshRenderer {
public:
    // Per-triangle affine planes p(x, y) = a x + b y + c, 3 doubles each: barycentrics l0..l2,
    // 1/z, then normal*(1/z) (3, sign-corrected for back faces) and albedo*(1/z) or uv*(1/z) (3).
    static constexpr int kPlanes = 3 + 1 + 3 + 3;
    // float copy of planes 3..9 for the SSE shader: origin (ox, oy), then (a, b, value at origin) x 7
    static constexpr int kF = 24;
    // output rows per band of a single-frame render (the unit of work a thread takes)
    static constexpr int kBandRows = 16;
    // triangles whose box is at most this many samples wide are rasterised by raster_narrow
    static constexpr int kNarrow = 16;
    // A single frame with fewer samples than this (256^2 at ssaa 2 has 2^18) is drawn whole on the
    // calling thread. Measured in the 60 Hz loop + VMC stream (benchmarks.avatar_loop, alternating runs):
    // sharing a 256^2 frame's bands with a worker lowered the wall p99 while other jobs kept both cores
    // busy, but on the quiet machine it raised it (5.7-6.4 ms against 4.6-5.6 on one thread) and cost
    // 0.3-0.6 ms more CPU a frame: this VM's two vCPUs behave like one core's two hyperthreads (with
    // no VMC stream the caller's CPU halved, 2.8 -> 1.7 ms, and the wall time stayed 2.8-2.9 ms).
    // Batches of frames are split over the threads at any size.
    static constexpr std::int64_t kSplitSamples = std::int64_t(1) << 19;
    // Copies every array. tris [F*3]; offsets [T+1]; indices [K]; values [K*3]; uvs [V*2] + texture
    // [th*tw*3] (both or neither); colors [V*3] or null; cull [F] or null: 1 where the triangle is
    // single-sided (its back face, seen clockwise on screen, is not drawn), 0 double-sided.
    MeshRenderer(const float* verts, std::int64_t n_vertices, const std::int32_t* tris, std::int64_t n_tris,
                 const std::int64_t* offsets, const std::int32_t* indices, const float* values,
                 std::int64_t n_targets, const float* uvs, const std::uint8_t* texture, int tex_w, int tex_h,
                 const float* colors, const std::uint8_t* cull, const RenderConfig& cfg);

    std::int64_t n_vertices() const { return n_vertices_; }
    std::int64_t n_targets() const { return n_targets_; }
    const RenderConfig& config() const { return cfg_; }
    // Whether the 256-bit kernels run (an x86-64-v3 CPU, the default there): frames at ssaa 2 shaded
    // eight samples at a time (shade_rows_v3) and narrow triangles' coverage tested four samples at
    // a time, or the SSE paths every x86-64 CPU has; on = false is for tests, which compare the two.
    // Returns the setting now in force (never on without x86-64-v3). avx512: where the CPU is also
    // x86-64-v4, narrow triangles' coverage and depth test eight samples per compare and a whole row
    // (<= 16 samples) per masked store (the same bits as the 256-bit kernel); false is for tests.
    bool set_wide_kernels(bool on, bool avx512 = true);
    // whether the 512-bit narrow-triangle kernel runs (set_wide_kernels)
    bool avx512_kernels() const { return avx512_kernels_; }

    // weights [F*T]; rot [9] row-major; light [3] unit; out [F*H*W*3].
    void render(const float* weights, std::int64_t n_frames, const float* rot, const float* light,
                std::uint8_t* out);
    // verts [F*V*3] instead of weights.
    void render_vertices(const float* verts, std::int64_t n_frames, const float* rot, const float* light,
                         std::uint8_t* out);

private:
    // A triangle's sample bounds (x1 < x0 or y1 < y0: not drawn) and its 1/z plane, together: the
    // rasteriser reads 40 bytes per triangle (the other planes only for wide triangles).
    struct TriRaster {
        std::int32_t x0, x1, y0, y1;
        double iz[3];
    };
    // the large per-frame arrays are on huge pages where the OS has them (huge_pages.hpp)
    template <class T>
    using HugeVector = std::vector<T, HugePageAllocator<T>>;
    struct Workspace {
        std::vector<float> verts;      // V*3 deformed
        std::vector<double> normals;   // V*3 rotated unit normals
        std::vector<double> sx, sy, z; // V screen x/y (supersampled px) and view depth
        std::vector<double> rz;        // V 1/z (0 behind the camera)
        HugeVector<float> iz;          // S samples: 1/z of the nearest surface, 0 where none
        HugeVector<std::int32_t> tri;  // S samples: triangle id (valid where iz > 0)
        // the sample row held first in iz and tri: 0 while threads share the frame's bands; the
        // band's first row when one thread draws band after band, so that each band reuses the
        // buffers' first rows (a band's worth stays in cache instead of the whole frame's 2 MB)
        int row0 = 0;
        // per triangle: kPlanes affine functions of the sample (x, y); written for the planes read
        // later: barycentrics and 1/z (0..3) of wide triangles, all of them for the scalar shader
        HugeVector<double> planes;
        HugeVector<float> fplanes;     // per triangle: kF floats, shading planes 3..9 about a local origin
        HugeVector<TriRaster> rast;    // per triangle: what rasterising it reads
        // one frame split into bands of output rows: band b's triangles (ascending ids, those whose
        // box meets the band) are bin_tris[bin_start[b] .. bin_start[b + 1])
        std::vector<std::int64_t> bin_start;
        std::vector<std::int32_t> bin_tris;
        std::vector<std::int64_t> bin_fill;  // scratch: next free slot per band
    };
    void ensure_workspaces(int n);
    // vertex normals, then each vertex's rotated unit normal and screen position (threads: for the
    // per-vertex pass)
    void prepare(Workspace& ws, const float* verts, const float* rot, int threads) const;
    void accumulate_normals(Workspace& ws, const float* verts) const;
    void project_vertices(Workspace& ws, const float* verts, const float* rot, std::int64_t i0, std::int64_t i1) const;
    void setup_triangles(Workspace& ws, std::int64_t t_begin, std::int64_t t_end) const;
    // the shading planes of triangle t (v: its vertices; P: its barycentric and 1/z planes, then room for
    // the shading planes), called by setup_triangles for every triangle with a sample in its box
    void setup_shading(Workspace& ws, std::int64_t t, const std::int32_t* v, double area, const double* w,
                       double* P) const;
#if defined(__SSE2__)
    bool scalar_shading() const { return cfg_.ssaa != 2; }  // shade_rows' SSE path is for ssaa 2
#else
    bool scalar_shading() const { return true; }
#endif
    // list: the triangles to draw, in ascending order (nullptr: all n_tris_); n_list its length
    void raster_rows(Workspace& ws, int y0, int y1, const std::int32_t* list, std::int64_t n_list) const;
    void raster_narrow(Workspace& ws, std::int64_t t, int x0, int x1, int y0, int y1) const;
    void bin_triangles(Workspace& ws, int n_bands) const;
    // rasterise and shade one frame in bands (share: over the pool's threads)
    void draw(Workspace& ws, const float* light, std::uint8_t* out, bool share);
    void shade_rows(Workspace& ws, const float* light, std::uint8_t* out, int r0, int r1) const;
#if EMO3D_MULTIVERSIONED
    // shade_rows for ssaa 2 on an x86-64-v3 CPU (AVX2 + FMA): two pixels' eight samples at a time
    void shade_rows_v3(Workspace& ws, const float* light, std::uint8_t* out, int r0, int r1) const;
#endif
    template <class VertFn>
    void run(std::int64_t n_frames, const float* rot, const float* light, std::uint8_t* out, VertFn&& verts_of);

    RenderConfig cfg_;
    std::int64_t n_vertices_, n_tris_, n_targets_;
    std::vector<float> base_;
    std::vector<std::int32_t> tris_;
    RunDeltas deltas_;
    std::vector<float> uvs_, colors_;
    std::vector<std::uint8_t> cull_;  // per triangle: 1 = single-sided (back face culled); empty: none
    HugeVector<std::uint32_t> texels_;  // R | G << 8 | B << 16, one word per texel (on huge pages)
    int tex_w_ = 0, tex_h_ = 0;
    std::vector<Workspace> ws_;
    std::mutex mutex_;  // one render at a time per renderer (workspaces are shared)
    int n_threads_;
    bool wide_kernels_ = false;  // the 256-bit kernels (set_wide_kernels)
    bool avx512_kernels_ = false;  // and the 512-bit narrow-triangle kernel
    // the renderer's worker threads (started on the first render that splits work, joined when the
    // renderer is destroyed); declared last, so it is destroyed first
    std::unique_ptr<ThreadPool> pool_;
};

}  // namespace emo3d

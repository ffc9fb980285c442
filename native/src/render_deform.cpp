// Sparse deformation of many frames at once, blocked over VERTICES: for each block of vertices,
// every frame's slice of the output is written once while that block's deltas (all targets) stay
// in cache, so the deltas stream from memory once per call instead of once per frame. Needs each
// target's indices sorted ascending (SparseDeformer sorts them once). Same per-vertex summation
// order as emo3d::deform_sparse, so the results are bitwise equal.
#include <algorithm>
#include <cstring>
#include <vector>

#include "deform.hpp"
#include "render.hpp"

namespace emo3d {

void deform_sparse_blocked(const float* base, const std::int64_t* offsets, const std::int32_t* indices,
                           const float* values, const float* weights, float* out, std::int64_t n_vertices,
                           std::int64_t n_targets, std::int64_t n_frames, int n_threads) {
    if (n_frames < 4) {
        deform_sparse(base, offsets, indices, values, weights, out, n_vertices, n_targets, n_frames, 1);
        return;
    }
    constexpr std::int64_t kBlock = 1024;  // vertices per block: 12 KiB of output per frame
    const std::int64_t n = n_vertices * 3;
    const std::int64_t n_blocks = (n_vertices + kBlock - 1) / kBlock;
    parallel_for(n_blocks, n_threads, [&](std::int64_t b0, std::int64_t b1) {
        std::vector<std::int64_t> lo(n_targets), hi(n_targets);  // one small allocation per thread and call
        for (std::int64_t b = b0; b < b1; ++b) {
            const std::int32_t v0 = static_cast<std::int32_t>(b * kBlock);
            const std::int32_t v1 = static_cast<std::int32_t>(std::min(n_vertices, (b + 1) * kBlock));
            for (std::int64_t t = 0; t < n_targets; ++t) {
                const std::int32_t* first = indices + offsets[t];
                const std::int32_t* last = indices + offsets[t + 1];
                lo[t] = std::lower_bound(first, last, v0) - indices;
                hi[t] = std::lower_bound(indices + lo[t], last, v1) - indices;
            }
            const std::size_t bytes = sizeof(float) * 3 * static_cast<std::size_t>(v1 - v0);
            for (std::int64_t f = 0; f < n_frames; ++f) {
                float* o = out + f * n;
                const float* w = weights + f * n_targets;
                std::memcpy(o + std::int64_t(v0) * 3, base + std::int64_t(v0) * 3, bytes);
                for (std::int64_t t = 0; t < n_targets; ++t) {
                    const float wt = w[t];
                    if (wt == 0.0f) continue;
                    accumulate_sparse(o, indices, values, lo[t], hi[t], wt);
                }
            }
        }
    });
}

}  // namespace emo3d

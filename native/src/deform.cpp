#include "deform.hpp"

#include <cstring>

namespace emo3d {

void deform_dense(const float* base, const float* deltas, const float* weights, float* out,
                  std::int64_t n_vertices, std::int64_t n_targets, std::int64_t n_frames, int n_threads) {
    const std::int64_t n = n_vertices * 3;
    // Split over frames when there are several, else over vertex blocks of the single frame.
    if (n_frames > 1) {
        parallel_for(n_frames, n_threads, [&](std::int64_t f0, std::int64_t f1) {
            for (std::int64_t f = f0; f < f1; ++f) {
                float* o = out + f * n;
                const float* w = weights + f * n_targets;
                std::memcpy(o, base, sizeof(float) * n);
                for (std::int64_t t = 0; t < n_targets; ++t) {
                    const float wt = w[t];
                    if (wt == 0.0f) continue;
                    const float* d = deltas + t * n;
                    for (std::int64_t i = 0; i < n; ++i) o[i] += wt * d[i];
                }
            }
        });
        return;
    }
    if (n_frames == 0) return;
    const std::int64_t block = 4096;
    const std::int64_t n_blocks = (n + block - 1) / block;
    parallel_for(n_blocks, n < (1 << 16) ? 1 : n_threads, [&](std::int64_t b0, std::int64_t b1) {
        const std::int64_t i0 = b0 * block, i1 = std::min(n, b1 * block);
        std::memcpy(out + i0, base + i0, sizeof(float) * (i1 - i0));
        for (std::int64_t t = 0; t < n_targets; ++t) {
            const float wt = weights[t];
            if (wt == 0.0f) continue;
            const float* d = deltas + t * n;
            for (std::int64_t i = i0; i < i1; ++i) out[i] += wt * d[i];
        }
    });
}

void deform_sparse(const float* base, const std::int64_t* offsets, const std::int32_t* indices,
                   const float* values, const float* weights, float* out, std::int64_t n_vertices,
                   std::int64_t n_targets, std::int64_t n_frames, int n_threads) {
    const std::int64_t n = n_vertices * 3;
    parallel_for(n_frames, n_frames > 1 ? n_threads : 1, [&](std::int64_t f0, std::int64_t f1) {
        for (std::int64_t f = f0; f < f1; ++f) {
            float* o = out + f * n;
            const float* w = weights + f * n_targets;
            std::memcpy(o, base, sizeof(float) * n);
            for (std::int64_t t = 0; t < n_targets; ++t) {
                const float wt = w[t];
                if (wt == 0.0f) continue;
                accumulate_sparse(o, indices, values, offsets[t], offsets[t + 1], wt);
            }
        }
    });
}

}  // namespace emo3d

// Batched sparse deformation for many frames at once: frames are processed in small blocks so
// that each target's CSR indices/values are read once per block (not once per frame) while the
// block's output frames stay in cache. Same summation order as emo3d::deform_sparse (bitwise equal).
#include <algorithm>
#include <cstring>
#include <cstdlib>

#include "deform.hpp"
#include "render.hpp"

namespace emo3d {

void deform_sparse_blocked(const float* base, const std::int64_t* offsets, const std::int32_t* indices,
                           const float* values, const float* weights, float* out, std::int64_t n_vertices,
                           std::int64_t n_targets, std::int64_t n_frames, int n_threads) {
    const std::int64_t B = std::getenv("EMO3D_B") ? std::atoi(std::getenv("EMO3D_B")) : 8;
    const std::int64_t n = n_vertices * 3;
    const std::int64_t n_blocks = (n_frames + B - 1) / B;
    if (n_frames <= 1) {
        deform_sparse(base, offsets, indices, values, weights, out, n_vertices, n_targets, n_frames, 1);
        return;
    }
    parallel_for(n_blocks, n_threads, [&](std::int64_t b0, std::int64_t b1) {
        for (std::int64_t b = b0; b < b1; ++b) {
            const std::int64_t f0 = b * B, f1 = std::min(n_frames, f0 + B);
            for (std::int64_t f = f0; f < f1; ++f) std::memcpy(out + f * n, base, sizeof(float) * n);
            float* fo[64];
            float fw[64];
            for (std::int64_t t = 0; t < n_targets; ++t) {
                int m = 0;
                for (std::int64_t f = f0; f < f1; ++f) {
                    const float wt = weights[f * n_targets + t];
                    if (wt != 0.0f) {
                        fo[m] = out + f * n;
                        fw[m] = wt;
                        ++m;
                    }
                }
                if (m == 0) continue;
                const std::int64_t k0 = offsets[t], k1 = offsets[t + 1];
                if (m == 1) {
                    float* o = fo[0];
                    const float wt = fw[0];
                    for (std::int64_t k = k0; k < k1; ++k) {
                        float* p = o + static_cast<std::int64_t>(indices[k]) * 3;
                        const float* d = values + k * 3;
                        p[0] += wt * d[0];
                        p[1] += wt * d[1];
                        p[2] += wt * d[2];
                    }
                    continue;
                }
                for (std::int64_t k = k0; k < k1; ++k) {
                    const std::int64_t i = static_cast<std::int64_t>(indices[k]) * 3;
                    const float d0 = values[k * 3], d1 = values[k * 3 + 1], d2 = values[k * 3 + 2];
                    for (int j = 0; j < m; ++j) {
                        float* p = fo[j] + i;
                        p[0] += fw[j] * d0;
                        p[1] += fw[j] * d1;
                        p[2] += fw[j] * d2;
                    }
                }
            }
        }
    });
}

}  // namespace emo3d

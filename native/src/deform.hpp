// Blendshape deformation kernels: V = V0 + sum_t w[t] * D[t].
#pragma once
#include <cstdint>
#include <cstddef>

namespace emo3d {

// Dense deltas. base [V*3], deltas [T][V*3], weights [F][T], out [F][V*3]. Frames split over threads.
void deform_dense(const float* base, const float* deltas, const float* weights, float* out,
                  std::int64_t n_vertices, std::int64_t n_targets, std::int64_t n_frames, int n_threads);

// Sparse deltas (CSR by target): target t moves vertices idx[offsets[t]..offsets[t+1]) by
// values[k*3..k*3+3). Same layout of base/weights/out as the dense kernel.
void deform_sparse(const float* base, const std::int64_t* offsets, const std::int32_t* indices,
                   const float* values, const float* weights, float* out, std::int64_t n_vertices,
                   std::int64_t n_targets, std::int64_t n_frames, int n_threads);

// out[indices[k]] += w * values[k] for k in [k0, k1): one target's sparse contribution to one frame.
inline void accumulate_sparse(float* out, const std::int32_t* indices, const float* values, std::int64_t k0,
                              std::int64_t k1, float w) {
    for (std::int64_t k = k0; k < k1; ++k) {
        float* p = out + static_cast<std::int64_t>(indices[k]) * 3;
        const float* d = values + k * 3;
        p[0] += w * d[0];
        p[1] += w * d[1];
        p[2] += w * d[2];
    }
}

// Run fn(begin, end) over [0, n) split into at most n_threads contiguous chunks.
template <class Fn>
void parallel_for(std::int64_t n, int n_threads, Fn&& fn);

}  // namespace emo3d

#include "parallel.hpp"

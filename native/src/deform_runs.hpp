// Blendshape deltas in run-length form, the layout of the rig deformer (SparseDeformer).
//
// CSR (one vertex index per moved vertex) makes every delta a scattered read-modify-write. Here
// each target's moved vertices are grouped into runs of consecutive vertex indices; a gap of up
// to `max_gap` unmoved vertices inside a run is stored as zero deltas, so runs are long and a
// target's contribution to a frame is one contiguous multiply-add per run (SIMD, no index loads).
// Repeated indices within a target are summed into one delta.
#pragma once
#include <cstdint>
#include <vector>

namespace emo3d {

class ThreadPool;

struct RunDeltas {
    std::int64_t n_vertices = 0, n_targets = 0;
    std::vector<std::int64_t> target_runs;  // [T+1]: target t owns runs [target_runs[t], target_runs[t+1])
    std::vector<std::int32_t> start, end;   // per run: vertices [start, end)
    std::vector<std::int64_t> value_at;     // per run: index of its first float in values
    std::vector<float> values;              // per run: (end - start) * 3 floats, x y z per vertex

    // offsets [T+1] (non-decreasing), indices [K] in [0, V) (any order), values [K*3].
    static RunDeltas from_csr(const std::int64_t* offsets, const std::int32_t* indices, const float* values,
                              std::int64_t n_targets, std::int64_t n_vertices, int max_gap = 8);
    std::int64_t stored_vertices() const { return static_cast<std::int64_t>(values.size() / 3); }
};

// out[f] = base + sum_t weights[f, t] * D_t for F frames. base [V*3], weights [F*T], out [F*V*3].
// Blocked over vertices: each block of every frame is written once while the block's deltas stay
// in cache; targets whose weight is 0 in every frame are skipped. Per vertex the targets are
// summed in order t = 0..T-1 whatever F and n_threads, so a frame's result is bitwise the same
// alone or in any batch. Threads split the vertex blocks (n_threads <= 0: every core; a single
// frame always runs on the calling thread, where starting threads would cost more than it saves).
// pool: run the threads' shares on its workers (at most n_threads of them) instead of new threads.
void deform_runs(const float* base, const RunDeltas& d, const float* weights, float* out, std::int64_t n_frames,
                 int n_threads, ThreadPool* pool = nullptr);

}  // namespace emo3d

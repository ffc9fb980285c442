#include "deform_runs.hpp"

#include <algorithm>
#include <cstring>

#include "cpu_dispatch.hpp"
#include "parallel.hpp"

namespace emo3d {

RunDeltas RunDeltas::from_csr(const std::int64_t* offsets, const std::int32_t* indices, const float* values,
                              std::int64_t n_targets, std::int64_t n_vertices, int max_gap) {
    RunDeltas d;
    d.n_vertices = n_vertices;
    d.n_targets = n_targets;
    d.target_runs.assign(1, 0);
    std::vector<std::int64_t> order;
    for (std::int64_t t = 0; t < n_targets; ++t) {
        // this target's entries by ascending vertex (stable: repeated indices keep their order)
        const std::int64_t k0 = offsets[t], k1 = offsets[t + 1];
        order.resize(k1 - k0);
        for (std::int64_t i = 0; i < k1 - k0; ++i) order[i] = k0 + i;
        if (!std::is_sorted(indices + k0, indices + k1))
            std::stable_sort(order.begin(), order.end(),
                             [&](std::int64_t a, std::int64_t b) { return indices[a] < indices[b]; });
        std::size_t i = 0;
        while (i < order.size()) {
            // grow a run while the next moved vertex is at most max_gap vertices away
            const std::int32_t s = indices[order[i]];
            std::size_t j = i + 1;
            while (j < order.size() && indices[order[j]] - indices[order[j - 1]] <= max_gap + 1) ++j;
            const std::int32_t e = indices[order[j - 1]] + 1;
            d.start.push_back(s);
            d.end.push_back(e);
            const std::int64_t at = static_cast<std::int64_t>(d.values.size());
            d.value_at.push_back(at);
            d.values.resize(at + std::int64_t(e - s) * 3, 0.0f);
            for (std::size_t q = i; q < j; ++q)  // += sums repeated indices
                for (int c = 0; c < 3; ++c)
                    d.values[at + std::int64_t(indices[order[q]] - s) * 3 + c] += values[order[q] * 3 + c];
            i = j;
        }
        d.target_runs.push_back(static_cast<std::int64_t>(d.start.size()));
    }
    return d;
}

namespace {

constexpr std::int64_t kBlock = 1024;  // vertices per block: 12 KiB of output per frame
constexpr std::int64_t kParallelVertices = 8192;  // one frame of at least this many vertices is split over threads
constexpr std::int64_t kSmall = 64;    // targets kept in stack arrays (ARKit rigs have 51-52)

// n int64 of scratch: on the stack up to kSmall (no allocation per frame), else on the heap
class Scratch {
public:
    explicit Scratch(std::int64_t n) {
        if (n > kSmall) heap_.resize(n);
    }
    std::int64_t* data() { return heap_.empty() ? small_ : heap_.data(); }

private:
    std::int64_t small_[kSmall];
    std::vector<std::int64_t> heap_;
};

// o[i] += w * v[i] for i in [0, n): contiguous, so it vectorises (AVX2/FMA in the v3 clone)
inline void axpy(float* __restrict o, const float* __restrict v, std::int64_t n, float w) {
    for (std::int64_t i = 0; i < n; ++i) o[i] += w * v[i];
}

// Vertex blocks [b0, b1) of every frame. cursor[a]: for active target a, its first run that ends
// after the current block's first vertex (advanced block by block, one binary search per call).
EMO3D_HOT void deform_blocks(const float* base, const RunDeltas& d, const float* weights, float* out,
                             std::int64_t n_frames, const std::int64_t* active, std::int64_t n_active,
                             std::int64_t b0, std::int64_t b1) {
    const std::int64_t V = d.n_vertices, T = d.n_targets, n = V * 3;
    Scratch cursors(n_active);
    std::int64_t* cursor = cursors.data();
    const std::int32_t first = static_cast<std::int32_t>(b0 * kBlock);
    for (std::int64_t a = 0; a < n_active; ++a) {
        const std::int64_t t = active[a];
        const std::int32_t* e0 = d.end.data() + d.target_runs[t];
        const std::int32_t* e1 = d.end.data() + d.target_runs[t + 1];
        cursor[a] = std::upper_bound(e0, e1, first) - d.end.data();
    }
    for (std::int64_t b = b0; b < b1; ++b) {
        const std::int32_t v0 = static_cast<std::int32_t>(b * kBlock);
        const std::int32_t v1 = static_cast<std::int32_t>(std::min(V, (b + 1) * kBlock));
        for (std::int64_t f = 0; f < n_frames; ++f)
            std::memcpy(out + f * n + std::int64_t(v0) * 3, base + std::int64_t(v0) * 3, sizeof(float) * 3 * (v1 - v0));
        // target-major: a run segment's deltas are read once (then from L1) for every frame
        for (std::int64_t a = 0; a < n_active; ++a) {
            const std::int64_t t = active[a];
            const std::int64_t r1 = d.target_runs[t + 1];
            for (std::int64_t r = cursor[a]; r < r1 && d.start[r] < v1; ++r) {
                const std::int32_t s = std::max(d.start[r], v0), e = std::min(d.end[r], v1);
                const float* v = d.values.data() + d.value_at[r] + std::int64_t(s - d.start[r]) * 3;
                for (std::int64_t f = 0; f < n_frames; ++f) {
                    const float wt = weights[f * T + t];
                    if (wt != 0.0f) axpy(out + f * n + std::int64_t(s) * 3, v, std::int64_t(e - s) * 3, wt);
                }
            }
        }
        for (std::int64_t a = 0; a < n_active; ++a) {
            const std::int64_t r1 = d.target_runs[active[a] + 1];
            while (cursor[a] < r1 && d.end[cursor[a]] <= v1) ++cursor[a];
        }
    }
}

}  // namespace

void deform_runs(const float* base, const RunDeltas& d, const float* weights, float* out, std::int64_t n_frames,
                 int n_threads, ThreadPool* pool) {
    if (n_frames <= 0) return;
    const std::int64_t T = d.n_targets;
    // targets with a non-zero weight in some frame (on the stack for rigs of up to kSmall targets:
    // no allocation per frame)
    Scratch targets(T);
    std::int64_t* active = targets.data();
    std::int64_t n_active = 0;
    for (std::int64_t t = 0; t < T; ++t) {
        bool any = false;
        for (std::int64_t f = 0; f < n_frames && !any; ++f) any = weights[f * T + t] != 0.0f;
        if (any && d.target_runs[t + 1] > d.target_runs[t]) active[n_active++] = t;
    }
    const std::int64_t n_blocks = (d.n_vertices + kBlock - 1) / kBlock;
    const int threads = n_frames > 1 || d.n_vertices >= kParallelVertices ? n_threads : 1;
    auto blocks = [&](std::int64_t b0, std::int64_t b1) {
        deform_blocks(base, d, weights, out, n_frames, active, n_active, b0, b1);
    };
    if (pool)
        pool->for_chunks(n_blocks, threads, blocks);
    else
        parallel_for(n_blocks, threads, blocks);
}

}  // namespace emo3d

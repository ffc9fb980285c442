#pragma once
#include <algorithm>
#include <thread>
#include <vector>

namespace emo3d {

inline int resolve_threads(int n_threads) {
    if (n_threads > 0) return n_threads;
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

template <class Fn>
void parallel_for(std::int64_t n, int n_threads, Fn&& fn) {
    int t = std::min<std::int64_t>(resolve_threads(n_threads), std::max<std::int64_t>(n, 1));
    if (t <= 1) { fn(std::int64_t{0}, n); return; }
    std::vector<std::thread> pool;
    pool.reserve(t - 1);
    std::int64_t chunk = (n + t - 1) / t;
    for (int i = 1; i < t; ++i) {
        std::int64_t b = i * chunk, e = std::min(n, b + chunk);
        if (b >= e) break;
        pool.emplace_back([&fn, b, e] { fn(b, e); });
    }
    fn(std::int64_t{0}, std::min(n, chunk));
    for (auto& th : pool) th.join();
}

}  // namespace emo3d

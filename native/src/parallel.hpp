#pragma once
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include <unistd.h>

namespace emo3d {

inline int resolve_threads(int n_threads) {
    if (n_threads > 0) return n_threads;
    unsigned hw = std::thread::hardware_concurrency();
    return hw == 0 ? 1 : static_cast<int>(hw);
}

// A fixed set of worker threads, started on first use and kept until the pool is destroyed (a
// renderer draws 60 frames a second: starting threads per frame cost ~10% of a frame and, paced,
// more). run(n, fn) calls fn(i) once for each i in [0, n): the calling thread and the workers take
// tasks in turn from one counter and run() returns when every task has finished. A worker that is
// slow to wake (a busy machine) delays nothing: the caller takes the remaining tasks itself and
// returns as soon as they are done; a late worker finds the job closed (the generation in the task
// counter has moved on) and sleeps again. A process forked after the workers started starts its own
// on its first run() (fork copies only the calling thread). Not re-entrant: one run() at a time (the renderer holds
// its lock across a frame). Workers never touch Python; the destructor wakes and joins them.
class ThreadPool {
public:
    explicit ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {}
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;
    ~ThreadPool() {
        if (!workers_.empty() && owner_ != getpid()) {  // a forked child's copy: the workers are not ours
            new std::vector<std::thread>(std::move(workers_));
            return;
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& th : workers_) th.join();
    }
    // threads that run tasks, the caller included
    int size() const { return n_threads_; }

    template <class Fn>
    void run(int n_tasks, Fn&& fn) {
        if (n_tasks <= 0) return;
        if (n_tasks == 1 || n_threads_ == 1) {
            for (int i = 0; i < n_tasks; ++i) fn(i);
            return;
        }
        if (workers_.empty() || owner_ != getpid()) start();
        using F = std::remove_reference_t<Fn>;
        std::uint64_t gen;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            gen = ++generation_;
            call_ = [](void* ctx, int i) { (*static_cast<F*>(ctx))(i); };
            ctx_ = const_cast<void*>(static_cast<const void*>(&fn));
            n_tasks_ = n_tasks;
            done_.store(0, std::memory_order_relaxed);
            next_.store(gen << 32, std::memory_order_release);
        }
        wake_.notify_all();
        const std::uint64_t tag = gen << 32;
        // the caller works too; it stops taking tasks when none are left
        for (std::uint64_t cur = next_.load(std::memory_order_relaxed);;) {
            if ((cur >> 32) != gen || (cur & 0xffffffffu) >= std::uint64_t(n_tasks)) break;
            if (next_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) {
                fn(int(cur - tag));
                if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_tasks) return;
                cur = next_.load(std::memory_order_relaxed);
            }
        }
        // tasks still running on workers: wait for the last to finish (it notifies under the lock)
        for (int spin = 0; spin < 256; ++spin) {  // the last task is usually about to finish
            if (done_.load(std::memory_order_acquire) == n_tasks) return;
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
        std::unique_lock<std::mutex> lock(mutex_);
        finished_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == n_tasks; });
    }

    // fn(begin, end) over [0, n) in contiguous chunks, on at most max_threads threads: kChunksPerThread
    // chunks per thread, so that a worker slow to wake (a busy machine) holds up one small chunk while
    // the others take the rest, not a whole thread's share
    static constexpr int kChunksPerThread = 4;
    template <class Fn>
    void for_chunks(std::int64_t n, int max_threads, Fn&& fn) {
        const int cap = max_threads > 0 ? std::min(max_threads, n_threads_) : n_threads_;
        if (cap <= 1 || n <= 1) {
            fn(std::int64_t{0}, n);
            return;
        }
        const std::int64_t t = std::min<std::int64_t>(std::int64_t(cap) * kChunksPerThread, n);
        const std::int64_t chunk = (n + t - 1) / t;
        const int k = int((n + chunk - 1) / chunk);
        run(k, [&](int i) { fn(i * chunk, std::min(n, (i + 1) * chunk)); });
    }

private:
    void start() {
        if (!workers_.empty()) {
            // a forked child: its copy of the pool names the parent's workers, which do not exist here
            // (fork copies only the calling thread); leave them (never joined or destroyed) and start its own
            new std::vector<std::thread>(std::move(workers_));
            workers_.clear();
            new (&mutex_) std::mutex();
            new (&wake_) std::condition_variable();
            new (&finished_) std::condition_variable();
        }
        owner_ = getpid();
        workers_.reserve(n_threads_ - 1);
        for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this] { work(); });
    }
    void work() {
        std::uint64_t seen = 0;
        for (;;) {
            void (*call)(void*, int);
            void* ctx;
            int n;
            std::uint64_t gen;
            {
                std::unique_lock<std::mutex> lock(mutex_);
                wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
                if (stop_) return;
                gen = seen = generation_;
                call = call_;
                ctx = ctx_;
                n = n_tasks_;
            }
            // claim tasks of this generation only: once the caller has moved on, the claim fails
            const std::uint64_t tag = gen << 32;
            for (std::uint64_t cur = next_.load(std::memory_order_relaxed);;) {
                if ((cur >> 32) != gen || (cur & 0xffffffffu) >= std::uint64_t(n)) break;
                if (next_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) {
                    call(ctx, int(cur - tag));
                    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
                        std::lock_guard<std::mutex> lock(mutex_);  // the caller may be about to wait
                        finished_.notify_all();
                    }
                    cur = next_.load(std::memory_order_relaxed);
                }
            }
        }
    }

    const int n_threads_;
    pid_t owner_ = 0;  // the process that started the workers
    std::vector<std::thread> workers_;
    std::mutex mutex_;
    std::condition_variable wake_, finished_;
    bool stop_ = false;
    std::uint64_t generation_ = 0;  // guarded by mutex_
    void (*call_)(void*, int) = nullptr;
    void* ctx_ = nullptr;
    int n_tasks_ = 0;
    std::atomic<std::uint64_t> next_{0};  // generation << 32 | next task index
    std::atomic<int> done_{0};
};

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

#include "core/parallel.h"

#include <atomic>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "core/check.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define NPUEMU_PAUSE() _mm_pause()
#else
#define NPUEMU_PAUSE() ((void)0)
#endif

namespace npuemu {
namespace {
thread_local bool t_in_worker = false;
}

// One worker thread per emulated core except core 0's slot (the caller always runs the first chunk,
// so worker w serves whatever chunk index it is handed).
struct CorePool::Impl {
  struct Job {
    const ChunkFn* fn = nullptr;
    int chunk = 0;
    int64_t begin = 0, end = 0;
  };
  std::mutex dispatch_mu;  // serialises run() calls from different host threads
  std::mutex mu;
  std::condition_variable cv_work, cv_done;
  std::vector<std::thread> threads;
  std::vector<Job> jobs;        // one per worker
  std::vector<uint64_t> seen;   // per worker: last generation handled
  uint64_t generation = 0;
  std::atomic<int> pending{0};
  std::exception_ptr error;
  bool stop = false;

  void start(int n_workers) {
    jobs.assign(n_workers, Job{});
    seen.assign(n_workers, 0);
    stop = false;
    for (int w = 0; w < n_workers; ++w) threads.emplace_back([this, w] { loop(w); });
  }
  void join() {
    {
      std::lock_guard<std::mutex> lk(mu);
      stop = true;
    }
    cv_work.notify_all();
    for (auto& t : threads) t.join();
    threads.clear();
  }
  void loop(int w) {
    t_in_worker = true;
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lk(mu);
        cv_work.wait(lk, [&] { return stop || seen[w] != generation; });
        if (stop) return;
        seen[w] = generation;
        job = jobs[w];
      }
      if (job.fn != nullptr) {
        try {
          (*job.fn)(job.chunk, job.begin, job.end);
        } catch (...) {
          std::lock_guard<std::mutex> lk(mu);
          if (!error) error = std::current_exception();
        }
        if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
          std::lock_guard<std::mutex> lk(mu);
          cv_done.notify_all();
        }
      }
    }
  }
};

CorePool::CorePool() : impl_(new Impl) { impl_->start(num_cores_ - 1); }

CorePool::~CorePool() {
  impl_->join();
  delete impl_;
}

CorePool& CorePool::instance() {
  // Intentionally leaked: worker threads must not be joined during static destruction at exit.
  static CorePool* pool = new CorePool();
  return *pool;
}

void CorePool::set_num_cores(int n) {
  NPU_CHECK(n >= 1 && n <= kMaxCores, "number of NPU cores must be in 1..", kMaxCores, ", got ", n);
  std::lock_guard<std::mutex> lk(impl_->dispatch_mu);
  if (n == num_cores_) return;
  impl_->join();
  num_cores_ = n;
  impl_->start(n - 1);
}

CoreSet CorePool::cores_for_mask(uint32_t mask) const {
  CoreSet set;
  const uint32_t all = (1u << num_cores_) - 1;
  if (mask == kCoreMaskAuto) {
    set.count = 1;
    set.ids[0] = 0;
    return set;
  }
  if (mask == kCoreMaskAll) mask = all;
  NPU_CHECK((mask & ~all) == 0, "core_mask ", mask, " names cores this NPU does not have (", num_cores_,
            " cores); valid values: 0 (auto), 0xffff (all), or a bit mask within ", all,
            " such as 1, 2, 4, 3, 7");
  set.count = 0;
  for (int c = 0; c < num_cores_; ++c)
    if (mask & (1u << c)) set.ids[set.count++] = c;
  return set;
}

void CorePool::run(const CoreSet& cores, int64_t n, ChunkFn fn) {
  if (n <= 0) return;
  const int k = static_cast<int>(cores.count < n ? cores.count : n);
  if (k <= 1 || t_in_worker) {
    // Single core (or nested call from a worker): the caller's thread does all chunks in order,
    // with the same chunk boundaries as a parallel run would use.
    for (int i = 0; i < k; ++i) {
      int64_t b, e;
      chunk(n, i, k, &b, &e);
      fn(i, b, e);
    }
    return;
  }
  std::lock_guard<std::mutex> dispatch(impl_->dispatch_mu);
  const int workers = static_cast<int>(impl_->jobs.size());
  const int delegated = k - 1 < workers ? k - 1 : workers;
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->error = nullptr;
    for (int w = 0; w < workers; ++w) impl_->jobs[w] = Impl::Job{};
    for (int i = 1; i <= delegated; ++i) {
      Impl::Job& job = impl_->jobs[i - 1];
      job.fn = &fn;
      job.chunk = i;
      chunk(n, i, k, &job.begin, &job.end);
    }
    impl_->pending.store(delegated, std::memory_order_release);
    ++impl_->generation;
  }
  impl_->cv_work.notify_all();
  std::exception_ptr own_error;
  try {
    int64_t b, e;
    chunk(n, 0, k, &b, &e);
    fn(0, b, e);
    for (int i = delegated + 1; i < k; ++i) {  // only if fewer workers than cores (never by design)
      chunk(n, i, k, &b, &e);
      fn(i, b, e);
    }
  } catch (...) {
    own_error = std::current_exception();
  }
  for (int spin = 0; spin < 2000 && impl_->pending.load(std::memory_order_acquire) != 0; ++spin) NPUEMU_PAUSE();
  if (impl_->pending.load(std::memory_order_acquire) != 0) {
    std::unique_lock<std::mutex> lk(impl_->mu);
    impl_->cv_done.wait(lk, [&] { return impl_->pending.load(std::memory_order_acquire) == 0; });
  }
  if (own_error) std::rethrow_exception(own_error);
  if (impl_->error) std::rethrow_exception(impl_->error);
}

}  // namespace npuemu

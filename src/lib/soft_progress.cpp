// SPDX-License-Identifier: BSD-2-Clause
//
// The software device's progress thread. Busy applications run the engine
// themselves (no system call per frame); an application that stops doing
// so for idle_ns hands over to this thread, which then sleeps until a peer's
// frame wakes it (the fabric's armed flag and wake socket) and runs the
// engine at once. So the target of a put, get or atomic need not call
// anything for it to complete, as with the kernel device.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <sched.h>

#include <cstring>

#include "soft_device.hpp"

namespace tb {

namespace {

// How often the thread looks at the application, and how long without
// progress counts as idle. The tick also drives the engine's timers
// while the application is idle.
constexpr uint64_t tick_ns = 250000;
constexpr uint64_t idle_ns = 200000;
// After handling frames the thread keeps polling this long before it
// sleeps again: while traffic flows, a wake-up per frame would cost each
// sender a system call.
constexpr uint64_t poll_ns = 50000;

}  // namespace

void soft_device::start_progress_thread()
{
    progress_epoll_fd_.reset(::epoll_create1(EPOLL_CLOEXEC));
    progress_tick_fd_.reset(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    progress_stop_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!progress_epoll_fd_ || !progress_tick_fd_ || !progress_stop_fd_)
        throw error(errno, std::string("soft device: progress thread fds: ") + std::strerror(errno));
    itimerspec ts{};
    ts.it_interval.tv_nsec = static_cast<long>(tick_ns);
    ts.it_value.tv_nsec = static_cast<long>(tick_ns);
    ::timerfd_settime(progress_tick_fd_.get(), 0, &ts, nullptr);
    for (int fd : {fabric_->wake_fd(), progress_tick_fd_.get(), progress_stop_fd_.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(progress_epoll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
            throw error(errno, std::string("soft device: epoll_ctl: ") + std::strerror(errno));
    }
    int rc = ::pthread_create(&progress_thread_, nullptr, &soft_device::progress_thread_main, this);
    if (rc)
        throw error(rc, std::string("soft device: cannot start the progress thread: ") +
                            std::strerror(rc));
    progress_thread_running_ = true;
}

void soft_device::stop_progress_thread() noexcept
{
    if (!progress_thread_running_)
        return;
    uint64_t one = 1;
    (void)!::write(progress_stop_fd_.get(), &one, sizeof(one));
    ::pthread_join(progress_thread_, nullptr);
    progress_thread_running_ = false;
}

void *soft_device::progress_thread_main(void *self) noexcept
{
    static_cast<soft_device *>(self)->progress_thread_loop();
    return nullptr;
}

void soft_device::progress_thread_loop() noexcept
{
    for (;;) {
        epoll_event ev[3];
        int n = ::epoll_wait(progress_epoll_fd_.get(), ev, 3, -1);
        for (int i = 0; i < n; i++)
            if (ev[i].data.fd == progress_stop_fd_.get())
                return;
        uint64_t ticks;
        while (::read(progress_tick_fd_.get(), &ticks, sizeof(ticks)) > 0)
            ;
        progress_thread_step();
    }
}

void soft_device::progress_thread_step() noexcept
{
    uint64_t now = tb_now_ns();
    auto app_busy = [this](uint64_t t) {
        return t - app_progress_ns_.load(std::memory_order_relaxed) < idle_ns;
    };
    std::unique_lock<std::mutex> g(mu_);
    if (app_busy(now)) {
        // Out of the application's way: no wake-ups per frame.
        if (progress_thread_armed_) {
            progress_thread_armed_ = false;
            armed_contexts_--;
        }
        return;
    }
    char buf[64];
    while (::recv(fabric_->wake_fd(), buf, sizeof(buf), MSG_DONTWAIT) > 0)
        ;
    // Disarmed while polling: peers need not wake a thread that is awake.
    if (progress_thread_armed_) {
        progress_thread_armed_ = false;
        armed_contexts_--;
    }
    for (uint64_t last_work = now; now - last_work < poll_ns && !app_busy(now);) {
        if (progress_locked(now) > 0)
            last_work = now;
        g.unlock();  // let the application in between rounds
        ::sched_yield();
        g.lock();
        now = tb_now_ns();
    }
    if (!progress_thread_armed_) {
        progress_thread_armed_ = true;
        armed_contexts_++;
    }
    set_armed();
    // Frames that came in before the flag was up woke nobody.
    if (wire_pending(tb_now_ns()))
        progress_locked(tb_now_ns());
}

}  // namespace tb

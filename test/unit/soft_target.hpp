// SPDX-License-Identifier: BSD-2-Clause
//
// The passive side of two-process tests: a peer process that opens a
// software device, registers a buffer, publishes it, then keeps its engine
// running and answers the test's commands about its own memory.
#pragma once

#include <memory>
#include <vector>

#include "device_under_test.hpp"
#include "pattern.hpp"

namespace tbtest {

enum class cmd : uint32_t {
    quit = 1,
    hash,         // a = offset, b = length -> FNV-1a of the bytes
    load64,       // a = offset -> the 64-bit value there
    dereg,        // deregisters the buffer
    recv_check,   // a = count: receive a messages, check order and payload
    stall,        // answers, then sleeps a ms without running its engine
};

struct command {
    cmd op;
    uint32_t pad;
    uint64_t a, b;
};

struct target_options {
    std::string fabric;
    size_t buf_len = 1 << 20;
    uint32_t access = TBRDMA_ACCESS_ALL;
    tb::soft_link_options soft;
};

// Body of the target process: returns its exit code.
int run_target(channel &c, const target_options &o);

// The test's side: start a target and learn its buffer.
struct target_handle {
    explicit target_handle(const target_options &o);
    uint64_t ask(cmd op, uint64_t a = 0, uint64_t b = 0);
    // Tells the target to quit and returns its exit status.
    int finish();

    peer_process proc;
    remote_buf buf{};
};

}  // namespace tbtest

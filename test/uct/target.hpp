// SPDX-License-Identifier: BSD-2-Clause
//
// The usual two-process set-up: a forked "target" process with a
// registered buffer that serves commands (fill it, check it) while it
// progresses, and the test process with an endpoint to it and the
// buffer's remote key.
#pragma once

#include <memory>
#include <string>

#include "node.hpp"
#include "pattern.hpp"
#include "process.hpp"

namespace uctest {

using namespace tbtest;  // test/common: processes, channel, pattern

// Commands to the target, answered with one uint64_t.
enum class cmd_op : uint32_t {
    fill,   // buf[i] = pat(seed, i) for the whole buffer; answers 0
    check,  // mismatches of buf[off + k] against pat(seed, base + k), and
            // (if guards) of the two bytes around it against the last fill
    read64, // the uint64_t at off
    read32, // the uint32_t at off
    dereg,  // deregisters the buffer, invalidating it; answers the status
    exit,   // answers 0, closes everything and exits with 0
};

struct cmd {
    cmd_op op;
    unsigned seed = 0;
    uint64_t off = 0, len = 0, base = 0;
    uint32_t guards = 1;
};

// What the test process sees of the target.
class target {
public:
    // Forks the target: fabric, its interface options, its buffer size.
    target(const std::string &fabric, size_t len, const node_options &o = {});

    peer_process &proc() { return proc_; }
    channel &chan() { return proc_.chan(); }
    const iface_address &address() const { return addr_; }
    const remote_mem &mem() const { return mem_; }
    // Sends our address and returns once the target connected an endpoint
    // back: stopping it later cannot catch it holding the fabric's lock.
    void hello(const iface_address &ours)
    {
        chan().send(ours);
        chan().recv<uint64_t>();
    }

    uint64_t ask(const cmd &c);
    void fill(unsigned seed) { ask({cmd_op::fill, seed}); }
    // Mismatching bytes in [off, off + len) (expected pat(seed, base + k)),
    // plus the bytes either side unless they were written too (!guards).
    uint64_t check(uint64_t off, uint64_t len, unsigned seed, uint64_t base = 0,
                   bool guards = true)
    {
        return ask({cmd_op::check, seed, off, len, base, guards});
    }
    // Tells it to exit; its exit status (0 when all its checks passed).
    int finish();

private:
    peer_process proc_;
    iface_address addr_;
    remote_mem mem_;
};

// A target plus the test process's node connected to it.
struct rma_pair {
    std::string fabric;
    target tgt;
    node me;
    uct_ep_h ep;
    uct_rkey_t rkey;
    buffer &local;

    rma_pair(size_t remote_len, size_t local_len, const node_options &mine = {},
             const node_options &theirs = {});
    ~rma_pair() { tgt.proc().kill9(); }  // see kill_first
    uint64_t raddr(uint64_t off = 0) const { return tgt.mem().addr + off; }
};

}  // namespace uctest

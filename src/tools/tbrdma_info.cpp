// SPDX-License-Identifier: BSD-2-Clause
//
// tbrdma-info: the tb links of this host, like ibv_devinfo for verbs
// devices. It reads /sys/class/tbrdma (one directory per link: loopN for
// in-kernel loop cables, tbN for Thunderbolt/USB4 connections to other
// hosts), asks /dev/tbrdma through the device library for the ABI and the
// limits, and uses hwloc to say where the Thunderbolt controller sits
// (NUMA node, nearby CPUs). Without the module it says "no tb links".
//
//   tbrdma-info [-v] [-d NAME] [--sysfs DIR]
//
//   -v          every counter of statistics/, and the controller's locality
//   -d NAME     only this link (e.g. tb0)
//   --sysfs DIR read DIR instead of /sys/class/tbrdma (for tests)
//
// Exit status: 0 (also when there are no links), 1 when -d names no link,
// 2 for bad arguments.
#include <dirent.h>
#include <hwloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tb/device.hpp"

namespace {

const char *default_sysfs = "/sys/class/tbrdma";

// One attribute, without the trailing newline; "" when it cannot be read.
std::string attr(const std::string &dir, const std::string &name)
{
    std::ifstream f(dir + "/" + name);
    std::string s;
    if (!f || !std::getline(f, s))
        return "";
    return s;
}

std::vector<std::string> list_dir(const std::string &dir)
{
    std::vector<std::string> out;
    DIR *d = opendir(dir.c_str());
    if (!d)
        return out;
    while (struct dirent *e = readdir(d)) {
        if (e->d_name[0] != '.')
            out.emplace_back(e->d_name);
    }
    closedir(d);
    return out;
}

// loop0 < loop1 < ... < tb0 < tb1 < ... < tb10: by prefix, then number.
bool link_order(const std::string &a, const std::string &b)
{
    auto split = [](const std::string &s) {
        size_t i = s.find_first_of("0123456789");
        std::string prefix = s.substr(0, i);
        long n = i == std::string::npos ? -1 : std::strtol(s.c_str() + i, nullptr, 10);
        return std::make_pair(prefix, n);
    };
    auto pa = split(a), pb = split(b);
    if (pa.first != pb.first)
        return pa.first == "loop";  // loops first, as in the index space
    return pa.second < pb.second;
}

// Where a PCI device is, from hwloc: "NUMA node 0, CPUs 0-15 (Package L#0)".
class locality {
public:
    locality()
    {
        if (hwloc_topology_init(&topo_))
            return;
        // All of them: USB4 and Thunderbolt controllers are not "important"
        // PCI classes for hwloc (system peripheral, serial bus).
        hwloc_topology_set_io_types_filter(topo_, HWLOC_TYPE_FILTER_KEEP_ALL);
        if (hwloc_topology_load(topo_)) {
            hwloc_topology_destroy(topo_);
            return;
        }
        ok_ = true;
    }
    ~locality()
    {
        if (ok_)
            hwloc_topology_destroy(topo_);
    }
    locality(const locality &) = delete;
    locality &operator=(const locality &) = delete;

    std::string describe(const std::string &busid)
    {
        if (!ok_)
            return "hwloc could not load the topology";
        hwloc_obj_t pci = hwloc_get_pcidev_by_busidstring(topo_, busid.c_str());
        if (!pci)
            return "not in hwloc's topology";
        hwloc_obj_t anc = hwloc_get_non_io_ancestor_obj(topo_, pci);
        if (!anc)
            return "no CPU-side ancestor";
        std::string out;
        char *s = nullptr;
        if (anc->nodeset && !hwloc_bitmap_iszero(anc->nodeset) &&
            hwloc_bitmap_list_asprintf(&s, anc->nodeset) >= 0) {
            out += std::string("NUMA node ") + s + ", ";
            std::free(s);
            s = nullptr;
        }
        if (anc->cpuset && hwloc_bitmap_list_asprintf(&s, anc->cpuset) >= 0) {
            out += std::string("CPUs ") + s;
            std::free(s);
        }
        char type[64];
        hwloc_obj_type_snprintf(type, sizeof(type), anc, 0);
        out += " (" + std::string(type) + " L#" + std::to_string(anc->logical_index) + ")";
        if (pci->attr && pci->attr->pcidev.linkspeed > 0) {
            char buf[64];
            std::snprintf(buf, sizeof(buf), ", PCIe %.1f GB/s", pci->attr->pcidev.linkspeed);
            out += buf;
        }
        return out;
    }

private:
    hwloc_topology_t topo_{};
    bool ok_ = false;
};

void print_counters(const std::string &dir, bool all)
{
    std::string sdir = dir + "/statistics";
    std::vector<std::string> names = list_dir(sdir);
    if (names.empty())
        return;
    // The link's own counters first, in a fixed order; then the rest.
    static const char *order[] = {"tx_frames", "tx_bytes", "rx_frames", "rx_bytes",
                                  "retransmits", "timeouts", "rx_dup", "rx_gap",
                                  "rx_bad", "rx_stalls", "tx_acks"};
    std::vector<std::string> sorted;
    for (const char *n : order)
        if (std::find(names.begin(), names.end(), n) != names.end())
            sorted.emplace_back(n);
    std::sort(names.begin(), names.end());
    for (const std::string &n : names)
        if (std::find(sorted.begin(), sorted.end(), n) == sorted.end())
            sorted.push_back(n);
    std::printf("\tcounters:\n");
    for (const std::string &n : sorted) {
        std::string v = attr(sdir, n);
        if (!all && (v == "0" || v.empty()) && n != "tx_frames" && n != "rx_frames")
            continue;
        std::printf("\t\t%-20s %s\n", n.c_str(), v.c_str());
    }
}

void print_link(const std::string &root, const std::string &name, bool verbose,
                locality *loc, const tb::link_info *li)
{
    std::string dir = root + "/" + name;
    bool xd = name.rfind("tb", 0) == 0;
    std::printf("link:\t%s\n", name.c_str());
    std::printf("\tindex:\t\t\t%s\n", attr(dir, "index").c_str());
    std::printf("\ttransport:\t\t%s\n",
                xd ? "XDomain (Thunderbolt/USB4 host-to-host)" : "loop (in-kernel virtual cable)");
    std::string state = attr(dir, "state");
    if (xd)
        std::printf("\tstate:\t\t\t%s (login: %s)\n", state.c_str(), attr(dir, "login").c_str());
    else
        std::printf("\tstate:\t\t\t%s (carrier %s)\n", state.c_str(), attr(dir, "carrier").c_str());
    std::printf("\tidentity:\t\t%s\n", attr(dir, "identity").c_str());
    if (xd) {
        std::string peer = attr(dir, "peer_name");
        std::printf("\tpeer:\t\t\t%s (%s)\n", peer.empty() ? "?" : peer.c_str(),
                    attr(dir, "peer_uuid").c_str());
        std::printf("\tspeed:\t\t\t%s Mb/s (%s x %s lanes)\n", attr(dir, "speed_mbps").c_str(),
                    attr(dir, "link_speed").c_str(), attr(dir, "link_width").c_str());
    } else {
        std::printf("\tspeed:\t\t\t%s Mb/s (nominal)\n", attr(dir, "speed_mbps").c_str());
    }
    std::printf("\tlatency:\t\t%s ns (nominal)\n", attr(dir, "latency_ns").c_str());
    if (xd) {
        std::string pci = attr(dir, "pci_addr");
        std::string node = attr(dir, "numa_node");
        std::printf("\tcontroller:\t\t%s (NUMA node %s)\n", pci.c_str(),
                    node == "-1" || node.empty() ? "none" : node.c_str());
        if (loc && !pci.empty())
            std::printf("\tlocality:\t\t%s\n", loc->describe(pci).c_str());
        std::string poll = attr(dir, "poll_cpus");
        std::printf("\tpoll thread:\t\t%s\n",
                    poll.empty() ? "none (link down)" : ("CPUs " + poll).c_str());
        std::printf("\tprotocol:\t\t%s\n", attr(dir, "protocol").c_str());
        // "out_hopid in_hopid tx_ring rx_ring tx_slots rx_slots e2e"
        char oh[16] = "-", ih[16] = "-", tr[16] = "-", rr[16] = "-", e2e[16] = "-";
        unsigned txs = 0, rxs = 0;
        std::string rings = attr(dir, "rings");
        if (std::sscanf(rings.c_str(), "%15s %15s %15s %15s %u %u %15s", oh, ih, tr, rr, &txs,
                        &rxs, e2e) == 7)
            std::printf("\trings:\t\t\tTX ring %s, RX ring %s, HopIDs out %s in %s, %u/%u slots, E2E %s\n",
                        tr, rr, oh, ih, txs, rxs,
                        std::strcmp(e2e, "1") == 0 ? "on" : std::strcmp(e2e, "0") == 0 ? "off" : "-");
        if (verbose) {
            std::printf("\txdomain:\t\t%s, route %s\n", attr(dir, "xdomain").c_str(),
                        attr(dir, "route").c_str());
            std::printf("\tpeer vendor:\t\t%s\n", attr(dir, "peer_vendor").c_str());
            std::printf("\tlocal uuid:\t\t%s\n", attr(dir, "local_uuid").c_str());
        }
    } else {
        std::printf("\tcable drops:\t\t%s\n", attr(dir, "cable_drops").c_str());
    }
    if (li && li->name == name && li->numa_node >= 0 && !xd)
        std::printf("\tnuma node:\t\t%d\n", li->numa_node);
    print_counters(dir, verbose);
}

void usage(FILE *f)
{
    std::fprintf(f, "usage: tbrdma-info [-v] [-d NAME] [--sysfs DIR]\n"
                    "  -v           every counter, XDomain details\n"
                    "  -d NAME      only this link (loop0, tb0, ...)\n"
                    "  --sysfs DIR  read DIR instead of %s\n",
                 default_sysfs);
}

}  // namespace

int main(int argc, char **argv)
{
    bool verbose = false;
    std::string only, root = default_sysfs;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "-v" || a == "--verbose") {
            verbose = true;
        } else if ((a == "-d" || a == "--device") && i + 1 < argc) {
            only = argv[++i];
        } else if (a == "--sysfs" && i + 1 < argc) {
            root = argv[++i];
        } else if (a == "-h" || a == "--help") {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }

    std::vector<std::string> names = list_dir(root);
    std::sort(names.begin(), names.end(), link_order);

    // The module's view through /dev/tbrdma, when it is there.
    std::unique_ptr<tb::device> dev;
    std::vector<tb::link_info> links;
    if (root == default_sysfs && access("/dev/tbrdma", F_OK) == 0) {
        try {
            tb::open_options o;
            o.kind = "kernel";
            dev = tb::device::open(o);
            links = dev->links();
        } catch (const std::exception &e) {
            std::printf("/dev/tbrdma: %s\n", e.what());
        }
    }
    if (dev) {
        const tb::device_info &di = dev->info();
        std::printf("tbrdma: /dev/tbrdma, ABI %u, %zu link(s), max %u contexts per file, "
                    "%u MRs, frame %u B, inline %u B, send %u B\n",
                    di.abi_version, links.size(), di.max_contexts, di.max_mr, di.frame_max,
                    di.inline_max, di.send_max);
    }
    if (names.empty()) {
        struct stat st;
        bool loaded = stat("/sys/module/tbrdma", &st) == 0;
        std::printf("no tb links%s\n",
                    root != default_sysfs ? "" :
                    loaded ? " (tbrdma is loaded: no loop cables, no Thunderbolt peer logged in)"
                           : " (the tbrdma module is not loaded)");
        return only.empty() ? 0 : 1;
    }

    std::unique_ptr<locality> loc;
    bool found = false;
    for (const std::string &n : names) {
        if (!only.empty() && n != only)
            continue;
        if (!loc && n.rfind("tb", 0) == 0)
            loc = std::make_unique<locality>();
        const tb::link_info *li = nullptr;
        for (const tb::link_info &l : links)
            if (l.name == n)
                li = &l;
        if (found)
            std::printf("\n");
        print_link(root, n, verbose, loc.get(), li);
        found = true;
    }
    if (!found) {
        std::fprintf(stderr, "tbrdma-info: no link %s\n", only.c_str());
        return 1;
    }
    return 0;
}

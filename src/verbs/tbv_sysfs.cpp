// Which RDMA devices are tbrdma_ib.ko's, from sysfs.
#include "tbv.h"

#include <climits>
#include <cstdio>
#include <cstring>

extern "C" bool tbv_sysfs_is_tbrdma(const char *ibdev_path) noexcept
{
    char path[PATH_MAX];
    int n = std::snprintf(path, sizeof(path), "%s/node_desc", ibdev_path);
    if (n < 0 || static_cast<size_t>(n) >= sizeof(path))
        return false;
    std::FILE *f = std::fopen(path, "re");
    if (!f)
        return false;
    static const char prefix[] = "tbrdma ";
    char desc[sizeof(prefix)] = {};
    const size_t got = std::fread(desc, 1, sizeof(prefix) - 1, f);
    std::fclose(f);
    return got == sizeof(prefix) - 1 && std::memcmp(desc, prefix, got) == 0;
}

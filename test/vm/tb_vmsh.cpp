// tb_vmsh: a remote shell between the test VMs, for mpirun's launcher.
//
// The VMs of vm/xdomain-2vm have no ssh; this carries what mpirun needs of
// one: a command line run by /bin/sh on the other VM, its output back, its
// exit status as ours, and the environment "ssh -o SendEnv" would pass
// (PATH, LD_*, OMPI_*, UCX_*, TB_*). The command dies when the caller goes.
//
//   tb_vmsh serve PORT               on each VM that takes commands
//   tb_vmsh HOST COMMAND [ARGS...]   as mpirun's plm_rsh_agent (port:
//                                    $TB_VMSH_PORT, default 12222)
//
// Unauthenticated: only for the private network of two throwaway VMs.
#include <arpa/inet.h>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

extern char **environ;

namespace {

class unique_fd {
public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    unique_fd(const unique_fd &) = delete;
    unique_fd &operator=(const unique_fd &) = delete;
    ~unique_fd() { if (fd_ >= 0) close(fd_); }
    int get() const noexcept { return fd_; }

private:
    int fd_;
};

bool write_all(int fd, const void *p, size_t n)
{
    auto *b = static_cast<const char *>(p);
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= size_t(w);
    }
    return true;
}

bool read_all(int fd, void *p, size_t n)
{
    auto *b = static_cast<char *>(p);
    while (n) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return false;
        b += r;
        n -= size_t(r);
    }
    return true;
}

// Strings and frames: a 4-byte big-endian length, then the bytes.
bool send_string(int fd, const std::string &s)
{
    uint32_t n = htonl(uint32_t(s.size()));
    return write_all(fd, &n, 4) && write_all(fd, s.data(), s.size());
}

bool recv_string(int fd, std::string &s, uint32_t max)
{
    uint32_t n;
    if (!read_all(fd, &n, 4) || ntohl(n) > max)
        return false;
    s.resize(ntohl(n));
    return read_all(fd, s.data(), s.size());
}

constexpr uint32_t max_string = 1 << 20;
constexpr char frame_output = 'O', frame_exit = 'X';

bool sent_env(const std::string &kv)
{
    static const char *const prefixes[] = {"PATH=", "LD_", "OMPI_", "UCX_", "TB_"};
    for (const char *p : prefixes)
        if (kv.compare(0, std::strlen(p), p) == 0)
            return true;
    return false;
}

// One caller: the command's output as frames, then its exit status.
void serve_one(int sock)
{
    uint32_t nenv;
    if (!read_all(sock, &nenv, 4) || ntohl(nenv) > 4096)
        return;
    std::vector<std::string> env(ntohl(nenv));
    for (auto &kv : env)
        if (!recv_string(sock, kv, max_string))
            return;
    std::string command;
    if (!recv_string(sock, command, max_string))
        return;
    int out[2];
    if (pipe2(out, O_CLOEXEC))
        return;
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        setpgid(0, 0);  // (the parent too: a kill(-pid) finds the group either way)
        signal(SIGPIPE, SIG_DFL);
        dup2(out[1], 1);
        dup2(out[1], 2);
        close(out[0]);
        close(out[1]);
        close(sock);
        for (auto &kv : env)
            putenv(kv.data());
        execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char *>(nullptr));
        _exit(127);
    }
    setpgid(pid, pid);
    close(out[1]);
    unique_fd rd(out[0]);
    pollfd p[2] = {{rd.get(), POLLIN, 0}, {sock, POLLIN, 0}};
    char buf[65536];
    for (;;) {
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {  // the caller went (or wrote, which it must not)
            kill(-pid, SIGKILL);
            break;
        }
        if (!p[0].revents)
            continue;
        ssize_t n = read(rd.get(), buf, sizeof(buf));
        if (n <= 0)
            break;
        if (!write_all(sock, &frame_output, 1) || !send_string(sock, std::string(buf, size_t(n)))) {
            kill(-pid, SIGKILL);
            break;
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (write_all(sock, &frame_exit, 1))
        send_string(sock, std::to_string(code));
}

int serve(const char *port)
{
    unique_fd ls(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(std::atoi(port)));
    if (ls.get() < 0 || setsockopt(ls.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(ls.get(), reinterpret_cast<sockaddr *>(&a), sizeof(a)) || listen(ls.get(), 16)) {
        std::perror("tb_vmsh: listen");
        return 1;
    }
    signal(SIGCHLD, SIG_IGN);  // connection handlers reap themselves
    signal(SIGPIPE, SIG_IGN);  // a caller gone: write() fails, we kill the command
    for (;;) {
        unique_fd c(accept4(ls.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (c.get() < 0)
            continue;
        if (fork() == 0) {
            signal(SIGCHLD, SIG_DFL);  // waitpid() for the command
            serve_one(c.get());
            _exit(0);
        }
    }
}

int run(const char *host, int argc, char **argv)
{
    const char *port = std::getenv("TB_VMSH_PORT");
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port ? port : "12222", &hints, &res)) {
        std::fprintf(stderr, "tb_vmsh: unknown host %s\n", host);
        return 255;
    }
    unique_fd s(socket(res->ai_family, SOCK_STREAM, 0));
    bool connected = s.get() >= 0 && connect(s.get(), res->ai_addr, res->ai_addrlen) == 0;
    freeaddrinfo(res);
    if (!connected) {
        std::perror("tb_vmsh: connect");
        return 255;
    }
    std::vector<std::string> env;
    for (char **e = environ; *e; e++)
        if (sent_env(*e))
            env.emplace_back(*e);
    std::string command;
    for (int i = 0; i < argc; i++)
        command += (i ? " " : "") + std::string(argv[i]);
    uint32_t nenv = htonl(uint32_t(env.size()));
    bool ok = write_all(s.get(), &nenv, 4);
    for (auto &kv : env)
        ok = ok && send_string(s.get(), kv);
    if (!ok || !send_string(s.get(), command))
        return 255;
    for (;;) {
        char kind;
        std::string data;
        if (!read_all(s.get(), &kind, 1) || !recv_string(s.get(), data, max_string))
            return 255;
        if (kind == frame_exit)
            return std::atoi(data.c_str());
        if (!write_all(1, data.data(), data.size()))
            return 255;
    }
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc == 3 && std::strcmp(argv[1], "serve") == 0)
        return serve(argv[2]);
    if (argc < 3) {
        std::fprintf(stderr, "usage: tb_vmsh serve PORT | tb_vmsh HOST COMMAND [ARGS...]\n");
        return 2;
    }
    return run(argv[1], argc - 2, argv + 2);
}
